# The uWSGI row of bench/run.mjs: a plain WSGI app (PEP 3333) run by uWSGI's python3 plugin.
# "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k ("abc...xyz" repeated), text/plain with a
# Content-Length, like every other backend of the bench.
HELLO = b"Hello, World!"
BIG = (b"abcdefghijklmnopqrstuvwxyz" * 2521)[:65536]


def application(environ, start_response):
    body = BIG if environ.get("PATH_INFO") == "/64k" else HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
