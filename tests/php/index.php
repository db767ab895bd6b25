<?php
// DirectoryIndex target.
header('Content-Type: text/plain');
echo 'index replica=', $_SERVER['FPM_REPLICA_NAME'] ?? '?', "\n";
