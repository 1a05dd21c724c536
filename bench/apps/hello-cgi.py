#!/usr/bin/python3
# The Python CGI of bench/run.mjs's start-up figures: the same response as tsgi's cgi-bin/hello.ts.
import os
import sys

body = "Hello from Python! You asked for %s\n" % os.environ.get("SCRIPT_NAME", "")
sys.stdout.write("Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)
