// Release pinning: each request reads the release symlink once, when it
// starts, and everything served for it (the static file, the PHP script, the
// DOCUMENT_ROOT and SCRIPT_FILENAME mod_proxy_fcgi sends) comes from that
// release. Thread-safe: the document root is set per request with
// ap_set_document_root, never by writing the shared server configuration (as
// mod_realdoc does, which is only safe under prefork).
#include <cstring>
#include <string>

#include "glue.h"

namespace fpmr::glue {

namespace {

const char* configured_document_root(server_rec* s) {
    auto* core = static_cast<core_server_config*>(ap_get_core_module_config(s->module_config));
    return core->ap_document_root;
}

// Binds r to `release_dir`: the per-request document root becomes the
// configured DocumentRoot rebased from the symlink onto the release.
void apply_pin(request_rec* r, const char* release_dir) {
    const char* suffix = server_config(r->server)->pinned_docroot_suffix;
    if (!suffix) return;  // DocumentRoot outside the symlink: refused at configtest
    ap_set_document_root(r, apr_pstrcat(r->pool, release_dir, suffix, NULL));
}

// post_read_request, REALLY_FIRST: before mod_rewrite's translate_name reads
// %{DOCUMENT_ROOT}, and once per request (subrequests and internal redirects
// do not run this hook; they inherit in translate_name).
int pin_request(request_rec* r) {
    try {
        ReleaseConfig* release = release_for(r->server);
        if (!release || !release->resolver) return DECLINED;
        int64_t now = now_us();
        const ReleaseResolution* resolution = release->resolver->resolve(now);
        RequestState* st = request_state(r, true);
        if (!resolution->ok) {
            st->pin_failed = true;
            if (release->resolver->should_log_error(now)) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00023)
                              "%s: answering 503 until it names a release directory",
                              resolution->error.c_str());
            }
            return DECLINED;
        }
        st->release_dir = apr_pstrmemdup(r->pool, resolution->release_dir.data(),
                                         resolution->release_dir.size());
        st->release_hash = fpmr::release_hash(resolution->release_dir);
        apply_pin(r, st->release_dir);
        return DECLINED;
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00024)
                      "internal error while pinning the request to a release");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

// translate_name, REALLY_FIRST: subrequests (DirectoryIndex, SSI) and
// internal redirects (ErrorDocument, mod_rewrite) get a fresh core request
// config; they inherit the pin of the request that made them.
int inherit_pin(request_rec* r) {
    try {
        RequestState* st = request_state(r, false);
        if (st && (st->release_dir || st->pin_failed)) return DECLINED;
        ReleaseConfig* release = release_for(r->server);
        if (!release) return DECLINED;
        for (request_rec* up = r->main ? r->main : r->prev; up; up = up->main ? up->main : up->prev) {
            RequestState* parent = request_state(up, false);
            if (!parent || !(parent->release_dir || parent->pin_failed)) continue;
            st = request_state(r, true);
            st->release_dir = parent->release_dir;
            st->release_hash = parent->release_hash;
            st->pin_failed = parent->pin_failed;
            // A subrequest of a request bound for php-fpm in namespace mode
            // (mod_proxy_fcgi's PATH_TRANSLATED lookup) is mapped and access
            // checked on the release like any other, and moved under the
            // stable path in fixups.
            st->stable_paths = parent->stable_paths;
            if (st->release_dir) apply_pin(r, st->release_dir);
            break;
        }
        return DECLINED;
    } catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

// map_to_storage, FIRST: a safety net for file names that did not come from
// the document root (an Alias or a RewriteRule to a path under the symlink).
// A request whose release did not resolve skips the directory walk (it would
// log a dangling symlink and answer 403): fixups answer it 503.
int rebase_filename(request_rec* r) {
    try {
        RequestState* st = request_state(r, false);
        if (st && st->pin_failed) return OK;
        ReleaseConfig* release = release_for(r->server);
        if (!st || !st->release_dir || !release || !r->filename || r->filename[0] != '/') {
            return DECLINED;
        }
        if (path_is_under(r->filename, release->symlink)) {
            std::string rebased = rebase_path(r->filename, release->symlink, st->release_dir);
            r->filename = apr_pstrmemdup(r->pool, rebased.data(), rebased.size());
        }
        return DECLINED;
    } catch (...) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

// fixups: a request whose release could not be resolved gets a clean 503,
// except the status handler, which must still show what is wrong. A
// namespace-mode subrequest, access-checked on the release, moves under the
// stable path.
int pinning_fixups(request_rec* r) {
    RequestState* st = request_state(r, false);
    if (!st) return DECLINED;
    if (st->pin_failed) {
        if (r->handler && std::strcmp(r->handler, "fpm-replica-status") == 0) return DECLINED;
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (st->release_dir) {
        // The application's view of its pin (SPEC): caches and temp paths
        // keyed by release stay apart across a flip. Server-set, so no
        // request header can forge it (those arrive as HTTP_*).
        const char* id = std::strrchr(st->release_dir, '/');
        apr_table_setn(r->subprocess_env, "FPM_REPLICA_RELEASE", st->release_dir);
        apr_table_setn(r->subprocess_env, "FPM_REPLICA_RELEASE_ID", id ? id + 1 : st->release_dir);
    }
    if (r->main && st->stable_paths) use_stable_paths(r, st);
    return DECLINED;
}

int create_resolvers(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    try {
        for (server_rec* s = main_server; s; s = s->next) {
            ReleaseConfig* release = release_for(s);
            if (!release) continue;
            ServerConfig* conf = server_config(s);
            std::string docroot = normalize_absolute_path(configured_document_root(s));
            if (path_is_under(docroot, release->symlink)) {
                std::string suffix = docroot.substr(release->symlink.size());
                conf->pinned_docroot_suffix = apr_pstrdup(pconf, suffix.c_str());
            }
            if (release->resolver) continue;
            release->resolver = std::make_unique<ReleaseResolver>(
                release->symlink, conf->resolve_interval_set ? conf->resolve_interval_us : 0);
            // One error line per interval for the whole instance, not per child.
            TrustedWriter writer;
            const SharedState& shared = writer.state();
            int slot = shared.writable() ? shared.claim_release(release->symlink) : -1;
            release->shared_slot = slot;
            if (slot >= 0) {
                release->resolver->set_error_log_clock(&shared.release_slot(slot).error_logged_us);
            } else if (shared.writable()) {
                // Only after a graceful restart that added release symlinks:
                // a start makes room for twice the configured ones.
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00167)
                             "FpmReplicaRelease %s: the shared memory this httpd made at its "
                             "start holds %u release symlinks, all taken; requests are still "
                             "pinned, but until httpd is stopped and started deploy "
                             "preparation (fpm-replica deploy) is refused for it, a release "
                             "whose replicas cannot start is waited for instead of answered "
                             "503 at once, and each httpd child logs a dangling symlink on "
                             "its own",
                             release->symlink.c_str(), shared.layout().release_count);
            }
        }
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_server, FPMRNO(00025)
                     "internal error while preparing release resolution");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

void use_stable_paths(request_rec* r, RequestState* st) {
    const char* stable = server_config(r->server)->stable_path;
    if (!stable || !st || !st->release_dir) return;
    if (r->filename && path_is_under(r->filename, st->release_dir)) {
        std::string moved = rebase_path(r->filename, st->release_dir, stable);
        r->filename = apr_pstrmemdup(r->pool, moved.data(), moved.size());
    }
    apply_pin(r, stable);
    st->stable_paths = true;
}

const ReleaseResolution* current_release(server_rec* s) {
    ReleaseConfig* release = release_for(s);
    if (!release || !release->resolver) return nullptr;
    const ReleaseResolution* resolution = release->resolver->resolve(now_us());
    return resolution->ok ? resolution : nullptr;
}

void register_pinning_hooks(apr_pool_t*) {
    // After the shared block exists (glue_state.cc, MIDDLE).
    ap_hook_post_config(create_resolvers, nullptr, nullptr, APR_HOOK_LAST);
    ap_hook_post_read_request(pin_request, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    // Before mod_rewrite (APR_HOOK_FIRST) and core's translation (REALLY_LAST).
    ap_hook_translate_name(inherit_pin, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    // Before core's directory walk (REALLY_LAST); mod_proxy's proxy: names are left alone.
    ap_hook_map_to_storage(rebase_filename, nullptr, nullptr, APR_HOOK_FIRST);
    // After SetHandler is applied (core fixups, REALLY_FIRST), before our own
    // handler mapping (LAST).
    ap_hook_fixups(pinning_fixups, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
