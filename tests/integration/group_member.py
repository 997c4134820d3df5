"""A consumer-group member for the tests: prints each record as a JSON line, then commits it.

    python tests/integration/group_member.py SERVER GROUP TOPIC NAME
SIGTERM leaves the group cleanly (commit, LeaveGroup)."""
import json
import signal
import sys

from dcli.client import Consumer


def main() -> None:
    server, group, topic, name = sys.argv[1:5]
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(True))
    consumer = Consumer(server, group_id=group, client_id=name, auto_offset_reset="earliest",
                        enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                        max_poll_interval_ms=20000)
    consumer.subscribe([topic])
    last = None
    try:
        while not stop:
            records = consumer.poll(200)
            if consumer.assignment() != last:
                last = consumer.assignment()
                print(json.dumps({"assigned": [p for _, p in last]}), flush=True)
            for r in records:
                print(json.dumps({"partition": r.partition, "offset": r.offset, "value": r.value.decode()}),
                      flush=True)
            if records:
                consumer.commit()
    finally:
        consumer.close()
        print(json.dumps({"closed": name}), flush=True)


if __name__ == "__main__":
    main()
