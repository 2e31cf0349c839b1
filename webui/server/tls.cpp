#include "webui/server/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <climits>
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
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using X509Ptr = std::unique_ptr<X509, Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;

// Encrypted keys are refused rather than prompted for on webd's terminal.
int no_password(char*, int, int, void*) {
  return 0;
}

constexpr size_t kMaxChain = 10;
constexpr const char* kCertPath = "/certificate_pem";
constexpr const char* kKeyPath = "/private_key_pem";

struct Upload {
  std::vector<X509Ptr> chain;  // leaf first
  KeyPtr key;
};

BioPtr memory_bio(std::string_view bytes) {
  if (bytes.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string rfc3339(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "";
}

Result<Upload> parse_upload(std::string_view chain_pem, std::string_view key_pem, std::time_t now) {
  Upload up;
  BioPtr bio = memory_bio(chain_pem);
  if (!bio) return Error{"invalid", "the certificate is too large", kCertPath};
  ERR_clear_error();
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr);
    if (!cert) break;
    up.chain.emplace_back(cert);
    if (up.chain.size() > kMaxChain)
      return Error{"invalid",
                   "more than " + std::to_string(kMaxChain) + " certificates in the chain",
                   kCertPath};
  }
  const unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  // Running out of PEM blocks ends the loop with "no start line"; anything else is a
  // block that does not parse.
  if (err != 0 && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE))
    return Error{"invalid",
                 "certificate " + std::to_string(up.chain.size() + 1) +
                     " of the chain does not parse (PEM with a valid X.509 certificate expected)",
                 kCertPath};
  if (up.chain.empty())
    return Error{"invalid", "no PEM certificate (-----BEGIN CERTIFICATE-----) found", kCertPath};
  X509* leaf = up.chain.front().get();
  const int expired = X509_cmp_time(X509_get0_notAfter(leaf), &now);
  const int early = X509_cmp_time(X509_get0_notBefore(leaf), &now);
  if (expired == 0 || early == 0)
    return Error{"invalid", "the certificate's validity dates are unreadable", kCertPath};
  if (expired < 0)
    return Error{"invalid", "the certificate expired on " + rfc3339(X509_get0_notAfter(leaf)),
                 kCertPath};
  if (early > 0)
    return Error{"invalid",
                 "the certificate is not valid before " + rfc3339(X509_get0_notBefore(leaf)),
                 kCertPath};

  BioPtr key_bio = memory_bio(key_pem);
  if (!key_bio) return Error{"invalid", "the private key is too large", kKeyPath};
  up.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_password, nullptr));
  ERR_clear_error();
  if (!up.key)
    return Error{"invalid", "no readable private key (PEM, not encrypted) found", kKeyPath};
  const int type = EVP_PKEY_get_base_id(up.key.get());
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(up.key.get()) < 2048)
      return Error{"invalid",
                   "the RSA key has " + std::to_string(EVP_PKEY_get_bits(up.key.get())) +
                       " bits; at least 2048 are needed",
                   kKeyPath};
  } else if (type == EVP_PKEY_EC) {
    char group[80] = {};
    size_t length = 0;
    int nid = NID_undef;
    if (EVP_PKEY_get_group_name(up.key.get(), group, sizeof group, &length) == 1) {
      nid = OBJ_sn2nid(group);
      if (nid == NID_undef) nid = EC_curve_nist2nid(group);
    }
    if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
      return Error{"invalid",
                   std::string("the EC key is on curve ") + (group[0] ? group : "(unknown)") +
                       "; P-256 or P-384 are accepted",
                   kKeyPath};
  } else {
    return Error{"invalid", "the key is neither RSA nor EC (P-256/P-384)", kKeyPath};
  }
  if (X509_check_private_key(leaf, up.key.get()) != 1) {
    ERR_clear_error();
    return Error{"invalid", "the private key does not belong to the (first) certificate", kKeyPath};
  }
  return up;
}

Status write_new_file(const std::string& path, const std::string& data) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"io", "cannot create " + path};
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Error{"io", "cannot write " + path};
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Error{"io", "cannot sync " + path};
  return control::ok();
}

void sync_directory_of(const std::string& file) {
  const std::string dir = std::filesystem::path(file).parent_path().string();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

CertificateInfo describe(X509* cert) {
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  std::unique_ptr<GENERAL_NAMES, Free> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_DNS) {
      const ASN1_STRING* s = n->d.dNSName;
      info.sans.push_back("DNS:" +
                          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = n->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      if ((ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16) &&
          ::inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text))
        info.sans.push_back(std::string("IP:") + text);
    }
  }
  info.not_before = rfc3339(X509_get0_notBefore(cert));
  info.not_after = rfc3339(X509_get0_notAfter(cert));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_size = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_size) == 1) {
    static const char* hex = "0123456789ABCDEF";
    for (unsigned i = 0; i < md_size; ++i) {
      if (i) info.sha256_fingerprint.push_back(':');
      info.sha256_fingerprint.push_back(hex[md[i] >> 4]);
      info.sha256_fingerprint.push_back(hex[md[i] & 15]);
    }
  }
  info.self_signed = X509_self_signed(cert, 0) == 1;
  ERR_clear_error();
  return info;
}

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

Status check_certificate(std::string_view chain_pem, std::string_view key_pem, std::time_t now) {
  auto up = parse_upload(chain_pem, key_pem, now);
  if (!up) return up.error();
  return control::ok();
}

Status CertificateStore::load() {
  namespace fs = std::filesystem;
  std::lock_guard lock(mutex_);
  if (replaceable_) {
    // An upload renames the key first, then the certificate: a crash can leave both new
    // files (complete or not), or the certificate's alone (the key is in place already).
    const std::string cert_new = cert_file_ + ".new", key_new = key_file_ + ".new";
    std::error_code ec;
    if (fs::exists(key_new) && fs::exists(cert_new)) {
      if (make_tls_context(cert_new, key_new)) {
        fs::rename(key_new, key_file_, ec);
        if (!ec) fs::rename(cert_new, cert_file_, ec);
      }
    } else if (fs::exists(cert_new)) {
      fs::rename(cert_new, cert_file_, ec);
    }
    fs::remove(key_new, ec);
    fs::remove(cert_new, ec);
  }
  auto ctx = make_tls_context(cert_file_, key_file_);
  if (!ctx) return ctx.error();
  context_ = ctx.value();
  return control::ok();
}

std::shared_ptr<boost::asio::ssl::context> CertificateStore::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

Result<CertificateInfo> CertificateStore::info() const {
  std::lock_guard lock(mutex_);
  if (!context_) return Error{"unavailable", "no certificate loaded"};
  X509* leaf = SSL_CTX_get0_certificate(context_->native_handle());
  if (!leaf) return Error{"unavailable", "no certificate loaded"};
  return describe(leaf);
}

Status CertificateStore::replace(const std::string& chain_pem, const std::string& key_pem) {
  if (!replaceable_)
    return Error{"conflict",
                 "webd was started with --cert/--key: replace those files and restart it"};
  auto up = parse_upload(chain_pem, key_pem, std::time(nullptr));
  if (!up) return up.error();
  // What is written is OpenSSL's own encoding of what was parsed, nothing else of the upload.
  BioPtr cert_out(BIO_new(BIO_s_mem())), key_out(BIO_new(BIO_s_mem()));
  if (!cert_out || !key_out) return Error{"io", "out of memory"};
  for (const auto& cert : up.value().chain)
    if (PEM_write_bio_X509(cert_out.get(), cert.get()) != 1) return Error{"io", "cannot encode"};
  if (PEM_write_bio_PrivateKey(key_out.get(), up.value().key.get(), nullptr, nullptr, 0, nullptr,
                               nullptr) != 1)
    return Error{"io", "cannot encode the key"};
  auto text = [](BIO* b) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(b, &data);
    return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
  };
  std::string key_text = text(key_out.get());
  const std::string cert_new = cert_file_ + ".new", key_new = key_file_ + ".new";
  std::lock_guard lock(mutex_);
  Status written = write_new_file(key_new, key_text);
  OPENSSL_cleanse(key_text.data(), key_text.size());
  if (written) written = write_new_file(cert_new, text(cert_out.get()));
  auto ctx = written ? make_tls_context(cert_new, key_new)
                     : Result<std::shared_ptr<boost::asio::ssl::context>>(written.error());
  if (!ctx) {
    ::unlink(key_new.c_str());
    ::unlink(cert_new.c_str());
    return Error{ctx.error().code == "io" ? "io" : "invalid",
                 "the certificate and key do not load into TLS: " + ctx.error().message, kCertPath};
  }
  if (::rename(key_new.c_str(), key_file_.c_str()) != 0 ||
      ::rename(cert_new.c_str(), cert_file_.c_str()) != 0)
    return Error{"io", "cannot rename the new certificate files into place"};
  sync_directory_of(cert_file_);
  context_ = ctx.value();
  return control::ok();
}

}  // namespace cordon::webui::server
