// Where `fpm-replica-status` was set decides whether it answers at all. An
// application's .htaccess (the samples keep AllowOverride FileInfo) may say
// `SetHandler fpm-replica-status` or `AddHandler fpm-replica-status .jpg` in
// a directory the Internet reaches; the status document (with its nonce) and
// its control actions must never be served from there.
//
// httpd gives no flag saying which section set r->handler, but it gives an
// order: at translate_name the per-directory configuration holds exactly the
// server configuration's <Location>, <LocationMatch> and <If> sections over
// the vhost's defaults (walk_location_and_if runs just before it); .htaccess
// files are read later, in map_to_storage (ap_directory_walk), and mod_mime's
// AddHandler and mod_rewrite's per-directory [H=] act later still. So a
// translate_name hook records whether the handler already is the status
// handler then, and a handler that runs before ours refuses the request when
// it was not. Anything that skips translate_name (file subrequests) or sets
// the handler later (a server-level <Directory> or <Files>, too) is refused:
// the rule fails closed.
#include <cstring>
#include <string>

#include "glue.h"

namespace fpmr::glue {

namespace {

constexpr const char* kStatusHandler = "fpm-replica-status";
constexpr const char* kNoteKey = "fpm-replica-status-set-by";
// Compared by address, not by text: a note of the same name and text written
// by anyone else (another module, a configuration directive) does not count.
constexpr char kSetByServerConfig[] = "server configuration";

// The handler core's fixups would set from the per-directory configuration
// as it stands now (the same steps as core_override_type), or null.
const char* handler_configured_now(request_rec* r) {
    auto* conf = static_cast<core_dir_config*>(ap_get_core_module_config(r->per_dir_config));
    if (!conf) return nullptr;
    if (conf->expr_handler) {
        const char* err = nullptr;
        const char* value = ap_expr_str_exec(r, conf->expr_handler, &err);
        return err ? nullptr : value;
    }
    return conf->handler;
}

// translate_name, REALLY_FIRST: before mod_rewrite, mod_alias or core map
// the URI (the first of them to answer OK ends the hook), while only the
// server configuration has been merged. Never answers for the request.
int note_status_handler_origin(request_rec* r) {
    try {
        const char* handler = handler_configured_now(r);
        if (handler && strcasecmp(handler, kStatusHandler) == 0) {
            apr_table_setn(r->notes, kNoteKey, kSetByServerConfig);
        }
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00143)
                      "internal error while noting where the status handler was set");
    }
    return DECLINED;
}

// handler, FIRST: before the status handler (MIDDLE). Refuses GET too: the
// document carries the nonce, the replicas' pids, sockets and releases.
int refuse_status_from_htaccess(request_rec* r) {
    try {
        if (!r->handler || strcasecmp(r->handler, kStatusHandler) != 0) return DECLINED;
        if (status_handler_set_by_server_config(r)) return DECLINED;
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00142)
                      "status handler refused for %s: fpm-replica-status was not set by a "
                      "<Location>, <If> or the virtual host itself (an .htaccess file, "
                      "AddHandler, a <Directory> or <Files> section?)",
                      ap_escape_logitem(r->pool, r->uri));
        r->status = HTTP_FORBIDDEN;
        ap_set_content_type(r, "application/json");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        static const char kBody[] =
            "{\"error\": \"fpm-replica-status answers only where the server configuration sets "
            "it in a <Location>\"}\n";
        if (!r->header_only) ap_rwrite(kBody, sizeof kBody - 1, r);
        return OK;
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00144)
                      "internal error while checking where the status handler was set");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

bool status_handler_set_by_server_config(request_rec* r) {
    return apr_table_get(r->notes, kNoteKey) == kSetByServerConfig;
}

void register_control_guard_hooks(apr_pool_t*) {
    ap_hook_translate_name(note_status_handler_origin, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(refuse_status_from_htaccess, nullptr, nullptr, APR_HOOK_FIRST);
}

}  // namespace fpmr::glue
