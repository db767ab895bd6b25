<?php
// A slow request: ?ms=N (default 1500) of wall time. A deadline loop around
// usleep, because usleep()/sleep() return early when php-fpm signals the
// worker, which would make a request cut short look like a success.
header('Content-Type: text/plain');
$ms = isset($_GET['ms']) ? (int)$_GET['ms'] : 1500;
$deadline = microtime(true) + $ms / 1000.0;
while (($left = $deadline - microtime(true)) > 0) {
    usleep((int)min(20000, $left * 1e6) + 1);
}
echo 'slow replica=', $_SERVER['FPM_REPLICA_NAME'] ?? '?', ' ms=', $ms, "\n";
