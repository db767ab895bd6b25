// The module record and hook registration. Everything else lives in the
// other glue files (httpd side) and in ../core (no httpd types).
#include "glue.h"

namespace {

void* create_server_config(apr_pool_t* p, server_rec*) {
    return apr_pcalloc(p, sizeof(fpmr::glue::ServerConfig));
}

void* merge_server_config(apr_pool_t* p, void* base_v, void* add_v) {
    auto* base = static_cast<fpmr::glue::ServerConfig*>(base_v);
    auto* add = static_cast<fpmr::glue::ServerConfig*>(add_v);
    auto* merged = static_cast<fpmr::glue::ServerConfig*>(
        apr_pcalloc(p, sizeof(fpmr::glue::ServerConfig)));
    // A vhost's own replicas win; without any it steers to the main server's.
    merged->replicas = add->replicas ? add->replicas : base->replicas;
    merged->release = add->release ? add->release : base->release;
    merged->resolve_interval_set = add->resolve_interval_set || base->resolve_interval_set;
    merged->resolve_interval_us =
        add->resolve_interval_set ? add->resolve_interval_us : base->resolve_interval_us;
    merged->stable_path = add->stable_path ? add->stable_path : base->stable_path;
    merged->spawn_command = add->spawn_command ? add->spawn_command : base->spawn_command;
    merged->helper_path = add->helper_path ? add->helper_path : base->helper_path;
    merged->helper_config = add->helper_path ? add->helper_config : base->helper_config;
    merged->drain_timeout_set = add->drain_timeout_set || base->drain_timeout_set;
    merged->health = add->health ? add->health : base->health;
    merged->probe_path = add->probe_path ? add->probe_path : base->probe_path;
    merged->pool_status_path = add->pool_status_path ? add->pool_status_path : base->pool_status_path;
    merged->warmup = add->warmup ? add->warmup : base->warmup;
    merged->asset_fallback = add->asset_fallback ? add->asset_fallback : base->asset_fallback;
    merged->drain_timeout_us =
        add->drain_timeout_set ? add->drain_timeout_us : base->drain_timeout_us;
    // pinned_docroot_suffix is computed per server in post_config.
    return merged;
}

void register_hooks(apr_pool_t* p) {
    fpmr::glue::register_config_check_hooks(p);
    fpmr::glue::register_state_hooks(p);
    fpmr::glue::register_steering_hooks(p);
    fpmr::glue::register_stable_path_hooks(p);
    fpmr::glue::register_status_hooks(p);
    fpmr::glue::register_pinning_hooks(p);
    fpmr::glue::register_supervisor_hooks(p);
    fpmr::glue::register_probe_hooks(p);
    fpmr::glue::register_control_guard_hooks(p);
    fpmr::glue::register_graceful_wakeup_hooks();
    fpmr::glue::register_child_count_hooks(p);
    fpmr::glue::register_request_figure_hooks(p);
    fpmr::glue::register_asset_fallback_hooks(p);
}

}  // namespace

extern "C" {
// Not AP_DECLARE_MODULE: httpd_includes.h already did its APLOG_USE_MODULE.
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA fpm_replica_module = {
    STANDARD20_MODULE_STUFF,
    nullptr,                          // per-directory config: none yet
    nullptr,
    create_server_config,
    merge_server_config,
    fpmr::glue::directives,
    register_hooks,
    AP_MODULE_FLAG_NONE,
};
}

namespace fpmr::glue {
ServerConfig* server_config(server_rec* s) {
    return static_cast<ServerConfig*>(ap_get_module_config(s->module_config, &fpm_replica_module));
}
}  // namespace fpmr::glue
