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
#   set :fpm_replica_cli, "fpm-replica"      # the CLI on the web hosts ("sudo -u deploy fpm-replica")
#   set :fpm_replica_options, []             # e.g. ["--host", "app.example.org"]
#   set :fpm_replica_watch, nil              # e.g. "2m": deploy --watch, flip back on 5xx
#   set :fpm_replica_remove_wait, "120s"     # longer than FpmReplicaDrainTimeout
#
# Every host that receives releases (Capistrano's release_roles) must run
# the module; mark the others `no_release: true`. prune orders every
# directory in releases/ by name (Capistrano's cleanup only 14-digit ones):
# keep nothing else there.

require "shellwords"

namespace :load do
  task :defaults do
    set_if_empty :fpm_replica_cli, "fpm-replica"
    set_if_empty :fpm_replica_options, []
    set_if_empty :fpm_replica_watch, nil
    set_if_empty :fpm_replica_remove_wait, "120s"
  end
end

# The CLI's command line, each word quoted: SSHKit joins arguments with
# spaces as they are. A setting given as one string is split as a shell would.
def fpm_replica_command(*args)
  words = ->(v) { v.is_a?(String) ? v.shellsplit : Array(v) }
  [*words.(fetch(:fpm_replica_cli)), *words.(fetch(:fpm_replica_options)), *args].map { |a| a.to_s.shellescape }
end

# prune and remove exit 3 when they kept a release still in use, 1 when
# they failed (no status handler, a refused layout), 2 on a usage error.
FPM_REPLICA_KEPT_IN_USE = 3

# Runs prune or remove: true when done, false when it kept a release in
# use; raises on any other failure. What it deleted and kept (and why) is
# logged at info level; the exit status comes on the last line.
def fpm_replica_delete(*args)
  lines = capture("#{fpm_replica_command(*args).join(" ")} 2>&1; echo \"fpm-replica exit $?\"").lines.map(&:chomp)
  status = (lines.pop.to_s[/\d+\z/] || "1").to_i
  lines.each { |line| info line }
  return true if status.zero?
  return false if status == FPM_REPLICA_KEPT_IN_USE
  raise "fpm-replica #{args.first} failed (exit #{status}): #{lines.last}"
end

namespace :fpm_replica do
  desc "Start and check masters on the new release, then flip current (fpm-replica deploy)"
  task :deploy do
    on release_roles(:all) do
      # The first deploy has no current yet: Capistrano's own step makes it.
      if test("[ -L #{current_path} ]")
        args = ["deploy", release_path]
        # Watched on a deploy only: a rollback's watch could flip back to
        # the very release being rolled back from.
        args += ["--watch", fetch(:fpm_replica_watch)] if fetch(:fpm_replica_watch) && fetch(:deploying, false)
        execute(*fpm_replica_command(*args))
      end
    end
  end
end

# Capistrano's own symlink step still runs after this one: it writes the
# same release again, which changes nothing for the module.
before "deploy:symlink:release", "fpm_replica:deploy"

# Capistrano's own deletions go; hooks that other plugins added to these
# tasks (Capistrano's `after` adds actions too) stay.
%w[deploy:cleanup deploy:cleanup_rollback].each do |name|
  Rake::Task[name].actions.reject! do |action|
    action.source_location&.first.to_s.end_with?("capistrano/tasks/deploy.rake")
  end
end

namespace :deploy do
  # keep_releases through prune: a release still in use (a request in
  # flight, a draining master, the rollback target) is kept, with a
  # warning, and deleted by a later deploy's cleanup.
  task :cleanup do
    on release_roles(:all) do |host|
      # As Capistrano's: nothing to do within keep_releases (the first
      # deploys, before the site may even be configured).
      next if capture(:ls, "-x", releases_path).split.size <= fetch(:keep_releases).to_i
      unless fpm_replica_delete("prune", "--keep", fetch(:keep_releases))
        warn "#{host}: fpm-replica prune kept releases still in use; a later deploy's cleanup deletes them"
      end
    end
  end

  # As Capistrano's: archive the release rolled back from, then delete it;
  # but only once its requests have answered and its masters have stopped
  # (up to fpm_replica_remove_wait). It must go: Capistrano's next rollback
  # picks the second newest release directory.
  task :cleanup_rollback do
    on release_roles(:all) do |host|
      last_release = capture(:ls, "-xt", releases_path).split.first
      last_release_path = releases_path.join(last_release)
      if test "[ `readlink #{current_path}` != #{last_release_path} ]"
        execute :tar, "-czf", deploy_path.join("rolled-back-release-#{last_release}.tar.gz"), last_release_path
        unless fpm_replica_delete("remove", last_release_path, "--wait", fetch(:fpm_replica_remove_wait))
          raise "#{host}: #{last_release_path} is still in use after #{fetch(:fpm_replica_remove_wait)}; " \
                "the rollback is done, run deploy:cleanup_rollback again to delete it"
        end
      else
        debug "Last release is the current release, skip cleanup_rollback."
      end
    end
  end
end
