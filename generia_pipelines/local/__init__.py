"""The local Generia platform: real gRPC servers, an object store and fault injection.

Start it with ``generia-pipelines stack`` or, from Python, ``generia_pipelines.local.stack``
(``LocalStack`` in the current event loop, ``ThreadedStack`` in its own thread). Nothing is
imported here, so loading one module (e.g. the Runware stand-in) stays cheap.
"""
