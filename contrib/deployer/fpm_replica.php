<?php
// mod_fpm_replica for Deployer 7: the flip goes through `fpm-replica deploy`
// (in namespace mode a master is started on the new release and checked,
// in realpath mode the serving masters compile it, before the symlink
// moves), the rollback's flip too, and the keep_releases cleanup through
// `fpm-replica prune`, which never deletes a release that a request or a
// php-fpm master still reads.
//
// UNTESTED: Deployer is not packaged for Debian, so unlike
// contrib/capistrano/ this recipe is not run by the test suite. It follows
// Deployer 7's recipe/deploy/{symlink,cleanup,rollback}.php.
//
// In deploy.php, after the recipe of your framework:
//
//   require '/usr/share/doc/libapache2-mod-fpm-replica/examples/deployer/fpm_replica.php';
//
// Settings, with their defaults:
//
//   set('fpm_replica_cli', 'fpm-replica');   // the CLI on the web hosts
//   set('fpm_replica_options', '');          // e.g. '--host app.example.org'
//   set('fpm_replica_watch', '');            // e.g. '2m': deploy --watch, flip back on 5xx
//   set('fpm_replica_timeout', 900);         // seconds the deploy may take, its watch included
//                                            // (Deployer's own default_timeout is 300)
//
// prune orders every directory in releases/ by name: keep release_name
// the default (numbers in deploy order) and nothing else in releases/.

namespace Deployer;

set('fpm_replica_cli', 'fpm-replica');
set('fpm_replica_options', '');
set('fpm_replica_watch', '');
set('fpm_replica_timeout', 900);

set('fpm_replica', function () {
    return '{{fpm_replica_cli}} {{fpm_replica_options}}';
});

desc('Starts and checks masters on the release, then flips current (fpm-replica deploy)');
task('deploy:symlink', function () {
    if (!test('[ -L {{current_path}} ]')) {
        // The first deploy: nothing serves yet, Deployer's own atomic flip.
        run('mv -T {{deploy_path}}/release {{current_path}}');
        return;
    }
    $watch = get('fpm_replica_watch') !== '' ? ' --watch {{fpm_replica_watch}}' : '';
    run('{{fpm_replica}} deploy {{release_path}}' . $watch, timeout: get('fpm_replica_timeout'));
    run('rm {{deploy_path}}/release');
});

desc('Deletes the releases beyond keep_releases that nothing uses (fpm-replica prune)');
task('deploy:cleanup', function () {
    run('cd {{deploy_path}} && if [ -e release ]; then rm release; fi');
    $keep = get('keep_releases');
    if ($keep <= 0) {
        return;
    }
    // Exit 3: a release still in use was kept, a later deploy deletes it;
    // any other failure fails the task.
    $status = trim(run('{{fpm_replica}} prune --keep ' . (int) $keep . ' >&2; echo $?'));
    if ($status === '3') {
        warning('fpm-replica prune kept releases still in use; a later deploy deletes them');
    } elseif ($status !== '0') {
        throw error("fpm-replica prune failed (exit $status); see its output");
    }
});

desc('Rolls back to the previous release through fpm-replica deploy');
task('rollback', function () {
    cd('{{deploy_path}}');
    $currentRelease = basename(run('readlink {{current_path}}'));
    $candidate = get('rollback_candidate');
    if (!test('[ -d releases/' . escapeshellarg($candidate) . ' ]')) {
        throw error(sprintf('Release "%s" not found.', $candidate));
    }
    run('{{fpm_replica}} deploy {{deploy_path}}/releases/' . escapeshellarg($candidate),
        timeout: get('fpm_replica_timeout'));
    // As Deployer's own rollback: the release is kept, marked, and skipped
    // by the next rollback; prune deletes it once it is old and unused.
    run('touch releases/' . escapeshellarg($currentRelease) . '/BAD_RELEASE');
    writeln("<info>rollback</info> to release <fg=green>$candidate</fg=green> was <success>successful</success>");
});
