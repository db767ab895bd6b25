// The status document as one self-contained HTML page for people (SPEC
// "Status and control"): the vhost's releases, a row per replica with its
// figures, and Drain / Undrain / Restart buttons that POST to the handler
// with the control nonce, as the CLI does.
#pragma once

#include <string>
#include <string_view>

#include "status_render.h"

namespace fpmr {

// Text made safe for HTML element content and for quoted attribute values:
// & < > " ' become character references.
std::string html_escape(std::string_view text);

// The page. It loads nothing from anywhere: its one <style> and one
// <script> carry `csp_nonce`, which the response's Content-Security-Policy
// names (script-src and style-src 'nonce-...'), so nothing else on the
// page, injected or not, runs or styles. `csp_nonce` must be fresh per
// response; the control nonce (status.nonce) goes in a data- attribute the
// script reads.
std::string render_status_html(const VhostStatus& status, std::string_view csp_nonce);

}  // namespace fpmr
