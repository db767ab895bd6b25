// The one place that includes httpd, APR and mod_proxy headers. Included by
// glue files only, after the standard headers, because httpd defines macros
// such as OK and DECLINED and mod_proxy.h declares unscoped enumerators such
// as NONE, GET and TCP.
#pragma once

extern "C" {
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "ap_provider.h"
#include "util_script.h"
#include "apr_optional.h"
#include "apr_optional_hooks.h"
#include "apr_shm.h"
#include "apr_strings.h"
// mod_proxy.h has no extern "C" of its own: unwrapped, its declarations get
// C++ mangled names that fail only when LoadModule resolves them.
#include "mod_proxy.h"

APLOG_USE_MODULE(fpm_replica);
}

// FPMRNO, our own message tags.
#include "log_text.h"
