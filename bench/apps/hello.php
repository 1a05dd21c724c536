<?php
// The PHP-FPM row of bench/run.mjs: "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k
// ("abc...xyz" repeated), text/plain with a Content-Length, like every other backend of the bench.
header('Content-Type: text/plain');
if ($_SERVER['REQUEST_URI'] === '/64k') {
    header('Content-Length: 65536');
    echo substr(str_repeat('abcdefghijklmnopqrstuvwxyz', 2521), 0, 65536);
} else {
    header('Content-Length: 13');
    echo 'Hello, World!';
}
