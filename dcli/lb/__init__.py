"""`dcli lb`: a load balancer whose backends are the instances of a service in the registry.

    strategies   which backend gets the next connection or request (pure, clock injected)
    routes       layer-7 routes: `--route method=POST:writers` and the like
    proxy        the asyncio proxy: layer 4 (tcp) and layer 7 (http)
    upstream     connections to backends: addresses, keep-alive pools per backend
    body         a request body read from the client in bounded chunks, streamed on
    forwarded    the headers a backend gets: X-Forwarded-* replaced unless from a trusted proxy
    limits       what a client may cost (timeouts, sizes, connections) and the capped listener
    health       periodic health checks (TCP connect, or GET of a health path)
    admin        the JSON stats endpoint, and the balancer's own entry in the registry
    service      one running balancer: discovery, proxy, health checks and admin together

Nothing here is imported by `dcli --help` or `dcli zk ...`: only `dcli lb` loads it.
"""
