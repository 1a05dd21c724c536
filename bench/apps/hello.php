<?php
// The hello world of bench/fastcgi.mjs under PHP-FPM: the same 13 bytes as every other backend.
header('Content-Type: text/plain');
header('Content-Length: 13');
echo 'Hello, World!';
