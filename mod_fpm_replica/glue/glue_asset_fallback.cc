// FpmReplicaAssetFallback: a static GET or HEAD whose file is missing from
// the request's pinned release, and whose path matches the operator's
// pattern, is served from the newest other release beside it that has the
// file (core/asset_fallback.h), through a subrequest that passes httpd's
// own access checks there, never as PHP.
#include <cstring>

#include "asset_fallback.h"
#include "glue.h"

namespace fpmr::glue {

namespace {

constexpr const char* kReleaseHeader = "X-Fpm-Replica-Release";

bool runs_as_php(const request_rec* rr) {
    return rr->handler && (std::strcmp(rr->handler, "fpm-replica") == 0 ||
                           std::strncmp(rr->handler, "proxy:", 6) == 0 ||
                           std::strstr(rr->handler, "php") != nullptr);
}

// fixups, REALLY_FIRST: the file is known missing once the directory walk
// is done, and this runs before mod_rewrite's per-directory rules (FIRST),
// whose front controller (Laravel's, Symfony's public/.htaccess: "not a
// file: index.php") would otherwise hand the missing asset to PHP.
int serve_from_another_release(request_rec* r) {
    try {
        const AssetFallbackConfig* config = server_config(r->server)->asset_fallback;
        RequestState* st = request_state(r, false);
        if (!config || !st || !st->release_dir || r->main || r->prev ||
            r->method_number != M_GET || r->finfo.filetype != APR_NOFILE || !r->filename ||
            runs_as_php(r) || !r->uri ||
            ap_regexec(config->pattern, r->uri, 0, nullptr, 0) != 0) {
            return DECLINED;
        }
        std::string missing = std::string(r->filename) + (r->path_info ? r->path_info : "");
        for (const AssetCandidate& candidate :
             asset_candidates(st->release_dir, missing, static_cast<size_t>(config->releases))) {
            request_rec* rr = ap_sub_req_lookup_file(candidate.path.c_str(), r, nullptr);
            bool servable = rr->status == HTTP_OK && rr->finfo.filetype == APR_REG && !runs_as_php(rr);
            if (!servable) {
                ap_destroy_sub_req(rr);
                continue;
            }
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, FPMRNO(00180)
                          "%s is missing from release %s: serving it from release %s",
                          r->uri, st->release_dir, candidate.release_id.c_str());
            ap_internal_fast_redirect(rr, r);
            apr_table_set(r->headers_out, kReleaseHeader, candidate.release_id.c_str());
            return OK;
        }
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00181)
                      "internal error while looking for a missing asset in other releases");
    }
    return DECLINED;
}

}  // namespace

void register_asset_fallback_hooks(apr_pool_t*) {
    ap_hook_fixups(serve_from_another_release, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
