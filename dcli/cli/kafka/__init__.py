"""`dcli kafka ...`: the broker, as Kafka's command-line tools, one module per tool:

    topics            kafka-topics                 create, list, describe, alter, delete topics
    console_producer  kafka-console-producer       stdin lines -> records
    console_consumer  kafka-console-consumer       records -> stdout
    consumer_groups   kafka-consumer-groups        list, describe, delete groups; reset offsets
    leader_election   kafka-leader-election        preferred or unclean leader elections
    perf              kafka-*-perf-test            `perf-test producer|consumer`
    server_start      kafka-server-start           a dcli server from server.properties

Each command parses its options, calls dcli.client and hands the result to the printer of
dcli.output.broker chosen by -w; options.py holds what they share (--bootstrap-server) and
scripts.py the kafka-* console scripts. This module only joins the tools into the `kafka` app.
"""
from __future__ import annotations

import typer

from dcli.cli.kafka import consumer_groups, console_consumer, console_producer, leader_election, perf, topics

app = typer.Typer(name="kafka", help="The broker, as Kafka's command-line tools.", no_args_is_help=True,
                  add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})

# in `dcli kafka --help`'s order
app.command("topics")(topics.topics)
app.command("console-producer")(console_producer.console_producer)
app.command("console-consumer")(console_consumer.console_consumer)
app.command("consumer-groups")(consumer_groups.consumer_groups)
app.command("leader-election")(leader_election.leader_election)
app.add_typer(perf.app, name="perf-test")
