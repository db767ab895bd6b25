<?php
// mod_fpm_replica's warm-up script. The replica supervisor runs it over
// FastCGI, straight on a replica's socket (SCRIPT_FILENAME is this file;
// it is never served through httpd), to read a master's working set and to
// have a new master compile it before it takes traffic:
//
//   GET  ?action=list                  the full paths of the scripts opcache
//                                      has cached, one per line
//   POST ?action=compile&deadline_ms=N one path per line in the body: each
//                                      existing, readable regular .php file
//                                      is compiled into opcache, never run;
//                                      answers "compiled N skipped M errors E
//                                      uncached U warnings W elapsed_ms T
//                                      timed_out 0|1" (compiled: now in the
//                                      cache; uncached: compiled, not kept)
//
// Where opcache is not loaded, off, or its API restricted to other scripts
// (opcache.restrict_api), both answer 409 with the reason on one line.
// The pool's open_basedir must allow this file's directory (and
// opcache.restrict_api, when set, must be a prefix of its path): a path
// outside open_basedir is skipped, not an error. No PHP warning reaches the
// answer: they are counted, and the pool's error log has them.

declare(strict_types=1);

ini_set('display_errors', '0');
ini_set('html_errors', '0');

$fpmr_warnings = 0;
set_error_handler(static function (int $errno) use (&$fpmr_warnings): bool {
    // Those the script silences with @ (a path's realpath outside
    // open_basedir) are expected; the others are counted.
    if (error_reporting() & $errno) {
        $fpmr_warnings++;
    }
    return true;  // handled: not displayed, not logged a second time
});

function fpmr_answer(int $status, string $text): void
{
    http_response_code($status);  // php-fpm sends it as a "Status:" header
    header('Content-Type: text/plain; charset=utf-8');
    header('Cache-Control: no-store');
    echo $text;
}

// Why the opcache API cannot be used from here, or null when it can.
function fpmr_opcache_unavailable(): ?string
{
    if (!function_exists('opcache_get_status') || !function_exists('opcache_compile_file')) {
        return 'opcache is not loaded';
    }
    if (!filter_var(ini_get('opcache.enable'), FILTER_VALIDATE_BOOLEAN)) {
        return 'opcache is off (opcache.enable=0)';
    }
    // opcache compares the prefix with the request's SCRIPT_FILENAME.
    $restrict = (string) ini_get('opcache.restrict_api');
    $self = (string) ($_SERVER['SCRIPT_FILENAME'] ?? __FILE__);
    if ($restrict !== '' && strncmp($self, $restrict, strlen($restrict)) !== 0) {
        return 'the opcache API is restricted to scripts under ' . $restrict . ' (opcache.restrict_api)';
    }
    if (!is_array(opcache_get_status(false))) {
        return 'opcache is not running (opcache_get_status failed)';
    }
    return null;
}

// open_basedir as PHP checks it, on the path as given: a plain prefix match
// per entry (an entry ending in "/" is a directory, one without also allows
// siblings that start with it, as PHP does). An empty setting allows all.
function fpmr_within_open_basedir(string $path): bool
{
    $setting = (string) ini_get('open_basedir');
    if ($setting === '') {
        return true;
    }
    foreach (explode(PATH_SEPARATOR, $setting) as $dir) {
        if ($dir !== '' && strncmp($path, $dir, strlen($dir)) === 0) {
            return true;
        }
    }
    return false;
}

// A path this script compiles: absolute, plain, .php, inside open_basedir,
// an existing readable regular file (after following symbolic links).
function fpmr_compilable(string $path): bool
{
    if ($path === '' || $path[0] !== '/' || strlen($path) > 4096 || strpos($path, "\0") !== false) {
        return false;
    }
    if (substr($path, -4) !== '.php' || strpos($path . '/', '/../') !== false ||
        strpos($path . '/', '/./') !== false) {
        return false;
    }
    if (!fpmr_within_open_basedir($path)) {
        return false;
    }
    $real = @realpath($path);
    if ($real === false || !fpmr_within_open_basedir($real)) {
        return false;
    }
    return is_file($real) && is_readable($real);
}

function fpmr_list(): void
{
    $status = opcache_get_status(true);
    $self = (string) ($_SERVER['SCRIPT_FILENAME'] ?? __FILE__);
    $out = '';
    foreach ((is_array($status) ? ($status['scripts'] ?? []) : []) as $key => $info) {
        $path = is_array($info) && isset($info['full_path']) ? (string) $info['full_path'] : (string) $key;
        // A path with a line break cannot be one line of the answer.
        if ($path === '' || $path === $self || $path === __FILE__ || strpbrk($path, "\r\n\0") !== false) {
            continue;
        }
        $out .= $path . "\n";
    }
    fpmr_answer(200, $out);
}

function fpmr_compile(int $deadline_ms): void
{
    global $fpmr_warnings, $fpmr_progress;
    $started = hrtime(true);
    $deadline = $started + $deadline_ms * 1000000;
    // The deadline bounds the work; max_execution_time must not cut it
    // shorter (nor a stuck compile run forever).
    set_time_limit(intdiv($deadline_ms, 1000) + 5);
    $body = (string) file_get_contents('php://input');
    $p = &$fpmr_progress;
    foreach (explode("\n", $body) as $line) {
        $path = rtrim($line, "\r");
        if ($path === '') {
            continue;
        }
        if ($p['timed_out'] || hrtime(true) >= $deadline) {
            $p['timed_out'] = 1;
            $p['skipped']++;
            continue;
        }
        if (!fpmr_compilable($path)) {
            $p['skipped']++;
            continue;
        }
        try {
            $ok = opcache_compile_file($path);
        } catch (Throwable $e) {  // a ParseError, for one
            $ok = false;
        }
        if (!$ok) {
            $p['errors']++;
        } elseif (!opcache_is_script_cached($path)) {
            // Compiled but not kept: a file changed in the last
            // opcache.file_update_protection seconds, a full cache, the
            // blacklist.
            $p['uncached']++;
        } else {
            $p['compiled']++;
        }
    }
    $p['done'] = true;
    fpmr_answer(200, fpmr_summary($p, $started));
}

function fpmr_summary(array $p, int $started): string
{
    global $fpmr_warnings;
    return sprintf("compiled %d skipped %d errors %d uncached %d warnings %d elapsed_ms %d timed_out %d\n",
                   $p['compiled'], $p['skipped'], $p['errors'], $p['uncached'], $fpmr_warnings,
                   intdiv(hrtime(true) - $started, 1000000), $p['timed_out']);
}

$fpmr_progress = ['compiled' => 0, 'skipped' => 0, 'errors' => 0, 'uncached' => 0, 'timed_out' => 0,
                  'done' => false];

// Only the supervisor speaks to this script: it names itself in
// SERVER_SOFTWARE, which httpd sets to its own for every request it passes
// on (a client cannot choose it). Anyone else learns nothing here.
if (($_SERVER['SERVER_SOFTWARE'] ?? '') !== 'mod_fpm_replica') {
    fpmr_answer(403, "the warm-up script answers the fpm-replica supervisor only\n");
    return;
}

$action = (string) ($_GET['action'] ?? '');
$method = (string) ($_SERVER['REQUEST_METHOD'] ?? '');
if ($action !== 'list' && $action !== 'compile') {
    fpmr_answer(400, "action= must be list or compile\n");
    return;
}
if (($action === 'list') !== ($method === 'GET')) {
    fpmr_answer(405, ($action === 'list' ? 'list is a GET' : 'compile is a POST') . "\n");
    return;
}
$reason = fpmr_opcache_unavailable();
if ($reason !== null) {
    fpmr_answer(409, $reason . "\n");
    return;
}
if ($action === 'list') {
    fpmr_list();
    return;
}
$deadline_ms = filter_var($_GET['deadline_ms'] ?? '', FILTER_VALIDATE_INT,
                          ['options' => ['min_range' => 1, 'max_range' => 3600000]]);
if ($deadline_ms === false) {
    fpmr_answer(400, "deadline_ms= must be a number of milliseconds from 1 to 3600000\n");
    return;
}
// A compile that ends the request (a fatal error opcache could not catch)
// still answers what was done, with the file it was at counted as an error.
$fpmr_started = hrtime(true);
register_shutdown_function(static function () use ($fpmr_started): void {
    global $fpmr_progress;
    if (!$fpmr_progress['done']) {
        $fpmr_progress['errors']++;
        echo fpmr_summary($fpmr_progress, $fpmr_started);
    }
});
fpmr_compile($deadline_ms);
