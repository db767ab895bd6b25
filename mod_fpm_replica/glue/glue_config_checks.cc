// The configuration checks that need the whole configuration or the file
// system, run at check_config so that `apachectl configtest` reports them.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "glue.h"

namespace fpmr::glue {

namespace {

// The stable path must be an existing, empty directory (the host never sees
// a release there: the mounts live in the replicas' namespaces), outside the
// release symlink and the directory holding the releases.
bool check_stable_path(server_rec* s, const char* stable, const ReleaseConfig* release) {
    std::string why;
    struct stat st;
    std::string releases_dir;
    if (release) {
        if (char* real = ::realpath(release->symlink.c_str(), nullptr)) {
            releases_dir = real;
            std::free(real);
            releases_dir = releases_dir.substr(0, releases_dir.rfind('/'));
        }
    }
    if (!release) {
        why = "needs FpmReplicaRelease in the same virtual host";
    } else if (path_is_under(stable, release->symlink) ||
               (!releases_dir.empty() && releases_dir != "/" && path_is_under(stable, releases_dir))) {
        why = "lies inside the releases ('" + release->symlink + "' or '" + releases_dir + "')";
    } else if (::lstat(stable, &st) != 0 || !S_ISDIR(st.st_mode)) {
        why = "is not an existing directory";
    } else if (DIR* dir = ::opendir(stable)) {
        for (dirent* e; (e = ::readdir(dir));) {
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
                why = "is not empty";
                break;
            }
        }
        ::closedir(dir);
    } else {
        why = "cannot be read";
    }
    if (why.empty()) return true;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00026)
                 "FpmReplicaStablePath: '%s' of %s %s", stable, vhost_label(s).c_str(),
                 why.c_str());
    return false;
}

// The DocumentRoot of a vhost with FpmReplicaRelease must be the symlink or
// lie under it: pinning rebases it onto the release the symlink names.
bool check_document_root(server_rec* s, const ReleaseConfig& release) {
    auto* core = static_cast<core_server_config*>(ap_get_core_module_config(s->module_config));
    std::string docroot = normalize_absolute_path(core->ap_document_root ? core->ap_document_root : "");
    if (!docroot.empty() && path_is_under(docroot, release.symlink)) return true;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00022)
                 "FpmReplicaRelease: DocumentRoot '%s' of %s is neither the release symlink "
                 "'%s' nor under it",
                 core->ap_document_root ? core->ap_document_root : "(none)",
                 vhost_label(s).c_str(), release.symlink.c_str());
    return false;
}

// Cross-directive checks; runs in `apachectl configtest` too.
int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    try {
        bool ok = true;
        for (server_rec* s = main_server; s; s = s->next) {
            if (ReleaseConfig* release = release_for(s)) ok = check_document_root(s, *release) && ok;
            if (const char* stable = server_config(s)->stable_path) {
                ok = check_stable_path(s, stable, release_for(s)) && ok;
            }
        }
        if (!ok) return !OK;
        for (server_rec* s = main_server; s; s = s->next) {
            VhostReplicas* set = replicas_for(s);
            if (!set || set->defined_in != s) continue;
            if (set->replicas.size() == 1) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00001)
                             "FpmReplica: only one replica ('%s') in %s: requests fail "
                             "while it restarts; declare two or more for zero downtime",
                             set->replicas[0].name.c_str(),
                             s->server_hostname ? s->server_hostname : "this server");
            }
        }
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, main_server, FPMRNO(00002)
                     "internal error while checking the configuration");
        return !OK;
    }
}

}  // namespace

void register_config_check_hooks(apr_pool_t*) {
    // check_config runs for `apachectl configtest` too, where post_config does not.
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
