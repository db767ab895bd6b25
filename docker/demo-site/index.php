<?php
// The mod_fpm_replica demo page: which release served it (read from the
// release's own directory, so a mixed release would show) and which replica.
$release = trim(file_get_contents(__DIR__ . '/../RELEASE'));
$replica = getenv('FPM_REPLICA_NAME') ?: '?';
header('Content-Type: text/html; charset=utf-8');
?><!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mod_fpm_replica demo</title>
<link rel="stylesheet" href="style.css">
</head>
<body>
<h1>mod_fpm_replica demo</h1>
<p>release <b id="release"><?= htmlspecialchars($release) ?></b>,
   served by replica <b id="replica"><?= htmlspecialchars($replica) ?></b>
   (php-fpm pid <?= getmypid() ?>).</p>
<p>Deploy: <code>docker compose exec web fpm-replica deploy /srv/app/releases/demo-2</code><br>
   Rolling restart: <code>docker compose exec web apachectl graceful</code><br>
   State: <a href="/fpm-replica-status">/fpm-replica-status</a>
   (<a href="/fpm-replica-status?format=prometheus">Prometheus</a>)</p>
</body>
</html>
