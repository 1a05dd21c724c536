#!/bin/sh
# The CGI script of bench/run.mjs's cgi-bin rows (fcgiwrap against `tsgi serve --cgi-bin`, behind nginx): a
# head and "Hello", from printf, a shell builtin, so the cost measured is the host's: a fork and an exec of sh.
printf 'Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nHello'
