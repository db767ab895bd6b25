# mod_fpm_replica for Capistrano 3: the flip goes through `fpm-replica
# deploy` (in namespace mode a master is started on the new release and
# checked, in realpath mode the serving masters compile it, before the
# symlink moves), and Capistrano's two deletions of releases, the
# keep_releases cleanup and the rollback's cleanup, go through `fpm-replica
# prune` and `fpm-replica remove`, which never delete a release that a
# request or a php-fpm master still reads.
#
# Load it in the Capfile after capistrano/deploy:
#
#   load "/usr/share/doc/libapache2-mod-fpm-replica/examples/capistrano/fpm_replica.rake"
#
# (or copy it into lib/capistrano/tasks/). Settings, with their defaults:
#
#   set :fpm_replica_cli, "fpm-replica"      # the CLI on the web hosts
#   set :fpm_replica_options, []             # e.g. ["--host", "app.example.org"]
#   set :fpm_replica_watch, nil              # e.g. "2m": deploy --watch, flip back on 5xx
#   set :fpm_replica_remove_wait, "120s"     # longer than FpmReplicaDrainTimeout
#
# Every host that receives releases (Capistrano's release_roles) must run
# the module; mark the others `no_release: true`.

require "shellwords"

namespace :load do
  task :defaults do
    set_if_empty :fpm_replica_cli, "fpm-replica"
    set_if_empty :fpm_replica_options, []
    set_if_empty :fpm_replica_watch, nil
    set_if_empty :fpm_replica_remove_wait, "120s"
  end
end

# The CLI's command line: SSHKit joins arguments with spaces, unquoted.
def fpm_replica_command(*args)
  [fetch(:fpm_replica_cli), *fetch(:fpm_replica_options), *args].map { |a| a.to_s.shellescape }
end

namespace :fpm_replica do
  desc "Start and check masters on the new release, then flip current (fpm-replica deploy)"
  task :deploy do
    on release_roles(:all) do
      # The first deploy has no current yet: Capistrano's own step makes it.
      if test("[ -L #{current_path} ]")
        args = ["deploy", release_path]
        args += ["--watch", fetch(:fpm_replica_watch)] if fetch(:fpm_replica_watch)
        execute(*fpm_replica_command(*args))
      end
    end
  end
end

# Capistrano's own symlink step still runs after this one: it writes the
# same release again, which changes nothing for the module.
before "deploy:symlink:release", "fpm_replica:deploy"

Rake::Task["deploy:cleanup"].clear_actions
Rake::Task["deploy:cleanup_rollback"].clear_actions

namespace :deploy do
  # keep_releases through prune: a release still in use (a request in
  # flight, a draining master, the rollback target) is kept and deleted by
  # a later deploy's cleanup. Exit 1 means "kept some": a warning.
  task :cleanup do
    on release_roles(:all) do |host|
      kept_some = !execute(*fpm_replica_command("prune", "--keep", fetch(:keep_releases)),
                           raise_on_non_zero_exit: false)
      if kept_some
        warn "#{host}: fpm-replica prune left releases beyond keep_releases (in use, or no answer " \
             "from the status handler: see its output); a later deploy's cleanup deletes them"
      end
    end
  end

  # As Capistrano's: archive the release rolled back from, then delete it;
  # but only once its requests have answered and its masters have stopped
  # (up to fpm_replica_remove_wait). It must go: Capistrano's next rollback
  # picks the second newest release directory.
  task :cleanup_rollback do
    on release_roles(:all) do
      last_release = capture(:ls, "-xt", releases_path).split.first
      last_release_path = releases_path.join(last_release)
      if test "[ `readlink #{current_path}` != #{last_release_path} ]"
        execute :tar, "-czf", deploy_path.join("rolled-back-release-#{last_release}.tar.gz"), last_release_path
        execute(*fpm_replica_command("remove", last_release_path, "--wait", fetch(:fpm_replica_remove_wait)))
      else
        debug "Last release is the current release, skip cleanup_rollback."
      end
    end
  end
end
