// TLS for cordon-webd: TLS 1.2 and 1.3 only, ECDHE with AES-GCM or ChaCha20-Poly1305,
// no compression or renegotiation; and the self-signed EC P-256 certificate made on
// first start (key file 0600) when no --cert/--key are given.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>
#include <vector>

#include "control/common/result.h"

namespace cordon::webui::server {

// Loads the certificate chain and key into a context configured as above.
control::Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(
    const std::string& cert_file, const std::string& key_file);

// Writes a new self-signed certificate (CN=cordon-webd, the given SANs such as
// "IP:10.60.0.1" or "DNS:localhost", 825 days) and its key unless both files exist.
control::Status ensure_self_signed(const std::string& cert_file, const std::string& key_file,
                                   const std::vector<std::string>& subject_alt_names);

}  // namespace cordon::webui::server
