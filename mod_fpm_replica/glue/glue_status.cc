// SetHandler fpm-replica-status: GET answers the status document (JSON,
// Prometheus text, or the HTML page for a browser), POST
// action=drain|undrain|restart&replica=NAME changes a replica's state when the
// request carries the nonce (so a cross-site form cannot drive it).
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_checks.h"
#include "form_body.h"
#include "glue.h"
#include "status_format.h"
#include "status_html.h"
#include "status_model.h"
#include "status_render.h"

namespace fpmr::glue {

namespace {

constexpr const char* kHandlerName = "fpm-replica-status";
constexpr const char* kNonceHeader = "X-Fpm-Replica-Nonce";
constexpr apr_size_t kMaxFormBytes = 4096;

// The document's data, read by the core (status_model.h) from this vhost's
// configuration and the shared blocks.
VhostStatus collect(server_rec* s, const VhostReplicas& set, SharedState shared,
                    bool with_pool_status = false) {
    StatusSources sources;
    sources.vhost = set.vhost_label;
    sources.replicas = &set.replicas;
    sources.members = &set.members;
    if (auto release = current_release(s)) sources.release = release->release_dir;
    if (ReleaseConfig* release = release_for(set.defined_in)) sources.release_link = release->symlink;
    sources.namespace_mode = server_config(set.defined_in)->stable_path != nullptr;
    sources.routes_by_release = routes_by_release(&set);
    sources.listener_pid = listener_pid;
    if (with_pool_status) {
        sources.pool_status = [s](int slot, const SocketSpec& socket) { return pool_status_of(s, slot, socket); };
    }
    return read_vhost_status(sources, shared, now_us());
}

int send_json(request_rec* r, int http_status, const std::string& body) {
    r->status = http_status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rwrite(body.data(), static_cast<int>(body.size()), r);
    return OK;
}

int send_error(request_rec* r, int http_status, const std::string& message) {
    return send_json(r, http_status, "{\"error\": " + json_escape(message) + "}\n");
}

// Reads action=, replica= and release= from a url-encoded POST body (parsed
// in the core: form_body.h). A body over kMaxFormBytes, a malformed one or a
// value longer than kReleaseLength is an error; a body of another content
// type is discarded and carries no fields (as ap_parse_form_data did).
bool read_form(request_rec* r, std::string* action, std::string* replica, std::string* release) {
    const char* type = apr_table_get(r->headers_in, "Content-Type");
    if (!type || ap_cstr_casecmpn(type, "application/x-www-form-urlencoded", 33) != 0) {
        return ap_discard_request_body(r) == OK;
    }
    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) return false;
    std::string body;
    if (ap_should_client_block(r)) {
        char buffer[1024];
        long n;
        while ((n = ap_get_client_block(r, buffer, sizeof buffer)) > 0) {
            if (body.size() + static_cast<size_t>(n) > kMaxFormBytes) {
                // Not worth reading the rest of an oversized body to keep the
                // connection alive.
                r->connection->keepalive = AP_CONN_CLOSE;
                return false;
            }
            body.append(buffer, static_cast<size_t>(n));
        }
        if (n < 0) return false;
    }
    FormBodyLimits limits;
    limits.max_value_length = kReleaseLength;
    auto fields = parse_form_body(body, limits);
    if (!fields) return false;
    auto take = [&](const char* name, std::string* out) {
        auto it = fields->find(name);
        if (it != fields->end()) *out = it->second;
    };
    take("action", action);
    take("replica", replica);
    take("release", release);
    return true;
}

// action=prepare&release=DIR, before a deploy tool flips the symlink: in
// namespace mode the supervisor brings one replica up on DIR, which the tool
// checks; in realpath mode (every master serves every release) the serving
// masters compile DIR's working set, so the flip finds it warm.
int handle_prepare(request_rec* r, VhostReplicas& set, SharedState shared, const std::string& dir) {
    ReleaseConfig* release = release_for(set.defined_in);
    if (!release || !server_config(set.defined_in)->spawn_command) {
        return send_error(r, HTTP_CONFLICT,
                          "prepare needs FpmReplicaRelease and supervision (FpmReplicaSpawn); without "
                          "them every replica serves every release as it is (realpath mode)");
    }
    // Checked here for a clear answer; the supervisor checks it again, as
    // untrusted input, before it starts anything.
    std::string why;
    std::optional<std::string> resolved = validate_prepared_release(release->symlink, dir, &why);
    if (!resolved) return send_error(r, HTTP_BAD_REQUEST, why);
    int slot = shared.find_release(release->symlink);
    if (slot < 0) return send_error(r, HTTP_INTERNAL_SERVER_ERROR, "no shared slot for the release");
    ReleaseSlot& rs = shared.release_slot(slot);
    if (!write_locked_string(rs.requested_seq, rs.requested, kReleaseLength, *resolved)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00061)
                      "deploy preparation for %s refused: the request area is locked (a "
                      "write that never finished, or another request at the same moment)",
                      set.vhost_label.c_str());
        return send_error(r, HTTP_SERVICE_UNAVAILABLE, "another prepare request is being written; try again");
    }
    rs.prepare_requests.fetch_add(1);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, FPMRNO(00047)
                  "deploy preparation of %s for %s requested through the status handler",
                  resolved->c_str(), set.vhost_label.c_str());
    return send_json(r, HTTP_OK, render_status_json(collect(r->server, set, shared)));
}

// The vhost's names and the connection's local address, for host_names_vhost.
VhostNames names_of(const request_rec* r) {
    VhostNames names;
    const server_rec* s = r->server;
    if (s->server_hostname) names.server_name = s->server_hostname;
    auto add = [](const apr_array_header_t* list, std::vector<std::string>* out) {
        if (!list) return;
        auto* elts = reinterpret_cast<const char* const*>(list->elts);
        for (int i = 0; i < list->nelts; ++i) {
            if (elts[i]) out->emplace_back(elts[i]);
        }
    };
    add(s->names, &names.aliases);
    add(s->wild_names, &names.wild_aliases);
    if (r->connection->local_ip) names.local_ip = r->connection->local_ip;
    return names;
}

// A control POST a browser may have been tricked into sending: refused with
// a log line before its nonce is even compared. Returns true when refused
// (the answer is sent).
bool refuse_foreign_control(request_rec* r, int* answer) {
    // Defence in depth: the handler hook of glue_control_guard.cc already
    // refuses a status handler an .htaccess file set.
    if (!status_handler_set_by_server_config(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00145)
                      "status POST refused: the handler was not set by the server configuration");
        *answer = send_error(r, HTTP_FORBIDDEN, "control needs the handler set in a <Location>");
        return true;
    }
    // DNS rebinding: a page of evil.example whose name now resolves to us
    // sends "Host: evil.example". A request without Host (HTTP/1.0) is no
    // browser's and passes.
    if (r->hostname && !host_names_vhost(r->hostname, names_of(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00140)
                      "status POST refused: Host '%s' is not a name of %s (ServerName, "
                      "ServerAlias, or the address the connection came in on)",
                      ap_escape_logitem(r->pool, r->hostname), r->server->server_hostname);
        *answer = send_error(r, HTTP_FORBIDDEN, "Host is not a name of this virtual host");
        return true;
    }
    // Cross-site requests: a browser names the page's origin in Origin (or,
    // failing that, Referer); the CLI sends neither.
    const char* origin = apr_table_get(r->headers_in, "Origin");
    const char* referer = apr_table_get(r->headers_in, "Referer");
    const char* host = apr_table_get(r->headers_in, "Host");
    std::optional<std::string> own =
        host ? own_origin(ap_http_scheme(r), host) : std::nullopt;
    OriginVerdict verdict = judge_origin(
        origin ? std::optional<std::string_view>(origin) : std::nullopt,
        referer ? std::optional<std::string_view>(referer) : std::nullopt, own);
    if (verdict == OriginVerdict::CrossOrigin || verdict == OriginVerdict::Unreadable) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00141)
                      "status POST refused: %s '%s' is %s, not %s", origin ? "Origin" : "Referer",
                      ap_escape_logitem(r->pool, origin ? origin : referer),
                      origin_verdict_name(verdict), own ? own->c_str() : "(no Host header)");
        *answer = send_error(r, HTTP_FORBIDDEN, "cross-origin control request");
        return true;
    }
    return false;
}

int handle_post(request_rec* r, VhostReplicas& set, SharedState shared) {
    int refused = OK;
    if (refuse_foreign_control(r, &refused)) return refused;
    const char* nonce = apr_table_get(r->headers_in, kNonceHeader);
    if (!nonce || !constant_time_equal(shared.nonce(), nonce)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FPMRNO(00018)
                      "status POST refused: missing or wrong %s header", kNonceHeader);
        return send_error(r, HTTP_FORBIDDEN,
                          std::string("missing or wrong ") + kNonceHeader + " header");
    }
    std::string action, replica, release;
    if (!read_form(r, &action, &replica, &release)) {
        return send_error(r, HTTP_BAD_REQUEST, "cannot read the form body");
    }
    if (action == "prepare") return handle_prepare(r, set, shared, release);
    int index = set.index_of(replica.c_str());
    int primary = index < 0 ? -1 : set.member_of(index, false);
    if (primary < 0 || set.members[primary].slot < 0) {
        return send_error(r, HTTP_NOT_FOUND, "unknown replica '" + replica + "'");
    }
    if (action == "drain" || action == "undrain") {
        // The operator's word, on every member of the replica (a replacement
        // master on the alternate member stays drained too).
        for (const ReplicaMember& m : set.members) {
            if (m.replica != index || m.slot < 0) continue;
            shared.slot(m.slot).admin_drained.store(action == "drain" ? 1 : 0);
        }
    } else if (action == "restart") {
        if (!server_config(set.defined_in)->spawn_command) {
            return send_error(r, HTTP_CONFLICT,
                              "replica '" + replica + "' is not supervised (no FpmReplicaSpawn): "
                              "restart it yourself");
        }
        // The supervisor replaces it (new master ready first, old one drained).
        shared.slot(set.members[primary].slot).restart_requested.fetch_add(1);
    } else {
        return send_error(r, HTTP_BAD_REQUEST,
                          "unknown action '" + action + "' (drain, undrain or restart)");
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, FPMRNO(00019)
                  "replica '%s' of %s: %s requested through the status handler",
                  replica.c_str(), set.vhost_label.c_str(), action.c_str());
    return send_json(r, HTTP_OK, render_status_json(collect(r->server, set, shared)));
}

// A fresh nonce for the HTML page's Content-Security-Policy: 16 random
// bytes as hex, new for every response, so a script injected into the page
// cannot guess the one its <script> would need. Empty when no random bytes
// could be read.
std::string csp_nonce(request_rec* r) {
    unsigned char bytes[16];
    if (apr_generate_random_bytes(bytes, sizeof bytes) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00179)
                      "status page not served: cannot read random bytes for its "
                      "Content-Security-Policy nonce");
        return {};
    }
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char b : bytes) {
        hex += kHex[b >> 4];
        hex += kHex[b & 0xf];
    }
    return hex;
}

// The page for people (status_html.h). Its policy allows only the page's own
// nonce'd <style> and <script> and fetches to this origin, so whatever a
// replica name or release path might smuggle into it cannot run, load
// anything, post a form elsewhere or frame the page.
int send_html(request_rec* r, VhostReplicas& set, SharedState shared) {
    std::string nonce = csp_nonce(r);
    if (nonce.empty()) return send_error(r, HTTP_INTERNAL_SERVER_ERROR, "no random bytes for the page");
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   apr_pstrcat(r->pool, "default-src 'none'; script-src 'nonce-", nonce.c_str(),
                               "'; style-src 'nonce-", nonce.c_str(),
                               "'; connect-src 'self'; img-src 'none'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
                               nullptr));
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Referrer-Policy", "same-origin");
    if (r->header_only) return OK;
    std::string page = render_status_html(collect(r->server, set, shared), nonce);
    ap_rwrite(page.data(), static_cast<int>(page.size()), r);
    return OK;
}

int status_handler(request_rec* r) {
    if (!r->handler || std::strcmp(r->handler, kHandlerName) != 0) return DECLINED;
    try {
        // Not a request of the release: the figures it reports leave it out.
        stop_counting_in_release(r);
        VhostReplicas* set = replicas_for(r->server);
        SharedState shared = shared_state();
        if (!set || !shared.valid()) {
            return send_error(r, HTTP_NOT_FOUND, "this virtual host declares no FpmReplica");
        }
        r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
        if (r->method_number == M_GET) {
            // Which representation depends on Accept: caches must keep them apart.
            apr_table_mergen(r->headers_out, "Vary", "Accept");
            const char* accept = apr_table_get(r->headers_in, "Accept");
            StatusFormat format = choose_status_format(
                r->args ? std::optional<std::string_view>(r->args) : std::nullopt,
                accept ? std::optional<std::string_view>(accept) : std::nullopt);
            if (format == StatusFormat::Html) return send_html(r, *set, shared);
            if (format == StatusFormat::Prometheus) {
                r->status = HTTP_OK;
                ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
                apr_table_setn(r->headers_out, "Cache-Control", "no-store");
                if (r->header_only) return OK;
                std::string text = render_status_prometheus(collect(r->server, *set, shared, true));
                ap_rwrite(text.data(), static_cast<int>(text.size()), r);
                return OK;
            }
            if (r->header_only) return send_json(r, HTTP_OK, "");
            return send_json(r, HTTP_OK, render_status_json(collect(r->server, *set, shared)));
        }
        if (r->method_number == M_POST) return handle_post(r, *set, shared);
        return HTTP_METHOD_NOT_ALLOWED;
    } catch (...) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FPMRNO(00020)
                      "internal error in the status handler");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

void register_status_hooks(apr_pool_t*) {
    ap_hook_handler(status_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
