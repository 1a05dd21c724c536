#!/bin/sh
# The shell CGI of bench/run.mjs's start-up figures: the same response as tsgi's cgi-bin/hello.ts.
printf 'Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello from sh! You asked for %s\n' "$SCRIPT_NAME"
