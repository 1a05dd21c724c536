#!/bin/sh
# tsgi: start a tsgi app as a FastCGI server under spawn-fcgi (Debian package spawn-fcgi).
#
# spawn-fcgi opens the listening socket itself (TCP or unix, with the owner and mode you ask for), puts it on
# file descriptor 0 and execs the program, the way mod_fcgid and lighttpd's bin-path do. `tsgi serve` without
# a transport flag sees a listening socket on fd 0 and serves FastCGI on it (the startup line says "at fd:0").
# Use it where a process supervisor (runit, daemontools, s6, supervisord, a plain init script) should own one
# FastCGI process; with systemd, prefer conf/systemd/tsgi-fastcgi.socket + .service.
#
# Settings come from the environment (defaults in brackets):
#   APP_DIR       the app's directory, where node_modules/ is [/srv/app]
#   APP           the module to serve, relative to APP_DIR, MODULE[:EXPORT] [app.js]
#   MOUNT         the app's mount point in the web server, for SCRIPT_NAME/PATH_INFO [/app]
#   TSGI          the tsgi command [$APP_DIR/node_modules/.bin/tsgi]
#   FCGI_ADDR     the address to listen on [127.0.0.1]
#   FCGI_PORT     the TCP port [9000]
#   FCGI_SOCKET   a unix socket path instead of FCGI_ADDR:FCGI_PORT (e.g. /run/tsgi/app.sock)
#   FCGI_SOCKET_MODE   the socket's mode [0660]
#   FCGI_SOCKET_GROUP  the socket's group, the web server's (e.g. www-data) [spawn-fcgi's default: the user's]
#   FCGI_USER, FCGI_GROUP  the account tsgi runs as when this script runs as root (spawn-fcgi -u/-g)
#   TSGI_ARGS     more `tsgi serve` options, e.g. "--max-body 10m"
#
# Examples:
#   APP_DIR=/srv/app FCGI_PORT=9000 conf/spawn-fcgi.sh
#   FCGI_SOCKET=/run/tsgi/app.sock FCGI_SOCKET_GROUP=www-data FCGI_USER=tsgi conf/spawn-fcgi.sh
# The web server side: conf/nginx-fastcgi.conf with `server 127.0.0.1:9000;` (or unix:/run/tsgi/app.sock).
#
# -n: spawn-fcgi does not fork; it execs tsgi in its own place, so the pid this script started is tsgi's and a
# supervisor can signal it (SIGTERM: finish in-flight requests and exit). Started by a web server-like
# launcher on fd 0, tsgi runs no master process of its own unless given --workers N.
#
# Tested: test/e2e/recipes-spawn-fcgi.test.ts runs this script (TCP and unix socket) behind nginx.
set -eu

APP_DIR=${APP_DIR:-/srv/app}
APP=${APP:-app.js}
MOUNT=${MOUNT:-/app}
TSGI=${TSGI:-$APP_DIR/node_modules/.bin/tsgi}
FCGI_ADDR=${FCGI_ADDR:-127.0.0.1}
FCGI_PORT=${FCGI_PORT:-9000}
FCGI_SOCKET=${FCGI_SOCKET:-}
FCGI_SOCKET_MODE=${FCGI_SOCKET_MODE:-0660}
FCGI_SOCKET_GROUP=${FCGI_SOCKET_GROUP:-}
FCGI_USER=${FCGI_USER:-}
FCGI_GROUP=${FCGI_GROUP:-}
TSGI_ARGS=${TSGI_ARGS:-}

cd "$APP_DIR"
set -- -n
if [ -n "$FCGI_SOCKET" ]; then
  set -- "$@" -s "$FCGI_SOCKET" -M "$FCGI_SOCKET_MODE"
  if [ -n "$FCGI_SOCKET_GROUP" ]; then set -- "$@" -G "$FCGI_SOCKET_GROUP"; fi
else
  set -- "$@" -a "$FCGI_ADDR" -p "$FCGI_PORT"
fi
if [ -n "$FCGI_USER" ]; then set -- "$@" -u "$FCGI_USER"; fi
if [ -n "$FCGI_GROUP" ]; then set -- "$@" -g "$FCGI_GROUP"; fi

# TSGI_ARGS is split on spaces on purpose (several options).
# shellcheck disable=SC2086
exec spawn-fcgi "$@" -- "$TSGI" serve "$APP" --mount "$MOUNT" $TSGI_ARGS
