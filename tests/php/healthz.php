<?php
// The application's health script, as a probe lane runs it.
header('Content-Type: text/plain');
echo 'healthy replica=', $_SERVER['FPM_REPLICA_NAME'] ?? '?', ' pool=', $_SERVER['FPM_POOL'] ?? '?', "\n";
