// TLS for cordon-webd: TLS 1.2 and 1.3 only, ECDHE with AES-GCM or ChaCha20-Poly1305,
// no compression or renegotiation; and the self-signed EC P-256 certificate made on
// first start (key file 0600) when no --cert/--key are given.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
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

// What GET /api/v1/system/certificate shows of the certificate in use.
struct CertificateInfo {
  std::string subject, issuer;        // RFC 2253
  std::vector<std::string> sans;      // "DNS:name", "IP:address"
  std::string not_before, not_after;  // RFC 3339, UTC
  std::string sha256_fingerprint;     // upper-case hex, ':'-separated, of the DER
  bool self_signed = false;
};

// Checks an uploaded certificate chain (PEM, leaf first) and its private key (PEM,
// unencrypted): every certificate parses, the leaf is valid at `now` (not expired, not
// yet valid), the key is RSA of at least 2048 bits or EC P-256/P-384 and matches the
// leaf. The bytes are untrusted; errors name the field (/certificate_pem, /private_key_pem).
control::Status check_certificate(std::string_view chain_pem, std::string_view key_pem,
                                  std::time_t now);

// The certificate webd serves, replaceable while running: new TLS connections take the
// context current() returns; existing ones keep the one they started with (each holds
// its shared_ptr). An upload is checked, written next to the old files and renamed over
// them (key first, then certificate), then the context is swapped.
//
// Threads: every member may be called from any thread; a mutex guards the context.
class CertificateStore {
 public:
  // `replaceable` is false when the files came from --cert/--key (managed outside webd).
  CertificateStore(std::string cert_file, std::string key_file, bool replaceable)
      : cert_file_(std::move(cert_file)),
        key_file_(std::move(key_file)),
        replaceable_(replaceable) {}
  // Finishes an upload cut short by a crash (*.new files), then loads the files.
  control::Status load();
  std::shared_ptr<boost::asio::ssl::context> current() const;
  control::Result<CertificateInfo> info() const;
  // Nothing changes unless every check passes and both files are written.
  control::Status replace(const std::string& chain_pem, const std::string& key_pem);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string cert_file_, key_file_;
  bool replaceable_;
};

}  // namespace cordon::webui::server
