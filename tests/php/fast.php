<?php
// A fast request: says which replica and worker answered it.
header('Content-Type: text/plain');
echo 'fast replica=', $_SERVER['FPM_REPLICA_NAME'] ?? '?', ' pid=', getmypid(), "\n";
