#include "webui/server/tls.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace cordon::webui::server {
using control::Error;
using control::Result;
using control::Status;

namespace {
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(FILE* f) const { std::fclose(f); }
};
}  // namespace

Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                                    const std::string& key_file) {
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384") != 1)
    return Error{"io", "cannot configure TLS"};
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1)
    return Error{"invalid", "cannot load the certificate " + cert_file, "--cert"};
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Error{"invalid", "cannot load the private key " + key_file, "--key"};
  if (SSL_CTX_check_private_key(native) != 1)
    return Error{"invalid", "the key " + key_file + " does not match the certificate " + cert_file,
                 "--key"};
  return ctx;
}

Status ensure_self_signed(const std::string& cert_file, const std::string& key_file,
                          const std::vector<std::string>& sans) {
  namespace fs = std::filesystem;
  if (fs::exists(cert_file) && fs::exists(key_file)) return control::ok();
  std::unique_ptr<EVP_PKEY, Free> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, Free> cert(X509_new());
  if (!key || !cert) return Error{"io", "cannot generate an EC P-256 key"};
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Error{"io", "no randomness for the serial"};
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 825L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Cordon"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("cordon-webd"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string san;
  for (const auto& s : sans) san += (san.empty() ? "" : ",") + s;
  std::vector<std::pair<int, std::string>> exts = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                   {NID_key_usage, "critical,digitalSignature"},
                                                   {NID_ext_key_usage, "serverAuth"}};
  if (!san.empty()) exts.emplace_back(NID_subject_alt_name, san);
  for (const auto& [nid, value] : exts) {
    std::unique_ptr<X509_EXTENSION, Free> ext(
        X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1)
      return Error{"invalid", "bad certificate extension " + value};
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
    return Error{"io", "cannot sign the certificate"};

  // The key is created 0600 from the start: it is never readable by others, not even briefly.
  fs::remove(key_file);
  const int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"io", "cannot create " + key_file};
  std::unique_ptr<FILE, Free> kf(::fdopen(fd, "w"));
  if (!kf) {
    ::close(fd);
    return Error{"io", "cannot open " + key_file};
  }
  if (PEM_write_PrivateKey(kf.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Error{"io", "cannot write " + key_file};
  kf.reset();
  std::unique_ptr<FILE, Free> cf(std::fopen(cert_file.c_str(), "w"));
  if (!cf || PEM_write_X509(cf.get(), cert.get()) != 1)
    return Error{"io", "cannot write " + cert_file};
  return control::ok();
}

}  // namespace cordon::webui::server
