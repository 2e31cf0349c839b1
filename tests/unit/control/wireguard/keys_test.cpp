// Key pair generation, compared with wireguard-tools (`wg genkey`, `wg pubkey`).
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "control/wireguard/keys.h"
#include "control/wireguard/wireguard_backend.h"

namespace cordon::control::wireguard {
namespace {

namespace fs = std::filesystem;

class Keys : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cordon-wg-keys-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  // `wg pubkey` of a key file; the key goes through a file, as it does in production.
  static std::string wg_pubkey(const std::string& file) {
    const auto r = run_command({"sh", "-c", "wg pubkey < '" + file + "'"});
    EXPECT_EQ(r.status, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  fs::path dir_;
};

TEST_F(Keys, GeneratedKeyIsPrivateClampedAndMatchesWgPubkey) {
  const std::string file = path("private.key");
  auto pub = ensure_private_key(file);
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_TRUE(valid_public_key(pub.value()));
  EXPECT_EQ(pub.value(), wg_pubkey(file));

  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::ifstream in(file);
  std::string text;
  std::getline(in, text);
  ASSERT_EQ(text.size(), 44u);
  unsigned char priv[32];
  std::size_t len = 0;
  ASSERT_EQ(sodium_base642bin(priv, sizeof priv, text.data(), text.size(), nullptr, &len, nullptr,
                              sodium_base64_VARIANT_ORIGINAL),
            0);
  EXPECT_EQ(priv[0] & 7, 0);  // clamped like wg genkey
  EXPECT_EQ(priv[31] & 0x80, 0);
  EXPECT_EQ(priv[31] & 0x40, 0x40);
  EXPECT_EQ(text.find(pub.value()), std::string::npos);

  // A second start reads the same key back.
  auto again = ensure_private_key(file);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), pub.value());
  // Two generated keys differ.
  EXPECT_NE(ensure_private_key(path("other.key")).value(), pub.value());
}

TEST_F(Keys, KeyFromWgGenkeyGivesTheSamePublicKey) {
  const std::string file = path("wg.key");
  const auto r = run_command({"sh", "-c", "umask 077; wg genkey > '" + file + "'"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto pub = ensure_private_key(file);
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub.value(), wg_pubkey(file));
}

TEST_F(Keys, UnsafeOrBrokenKeyFilesAreRefusedAndLeftAlone) {
  const std::string open_file = path("open.key");
  ASSERT_TRUE(ensure_private_key(open_file).ok());
  fs::permissions(open_file, fs::perms::others_read, fs::perm_options::add);
  auto r = ensure_private_key(open_file);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("0604"), std::string::npos) << r.error().message;

  const std::string junk = path("junk.key");
  { std::ofstream(junk) << "not a key\n"; }
  fs::permissions(junk, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  r = ensure_private_key(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid");
  std::ifstream in(junk);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "not a key") << "a refused file is not overwritten";

  EXPECT_FALSE(ensure_private_key(dir_.string()).ok()) << "a directory";
  EXPECT_EQ(ensure_private_key(path("missing-dir/x.key")).error().code, "io");
}

TEST(PublicKeyFormat, Validation) {
  EXPECT_TRUE(valid_public_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="));
  EXPECT_FALSE(valid_public_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg"));   // 43
  EXPECT_FALSE(valid_public_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D!="));  // alphabet
  EXPECT_FALSE(valid_public_key(""));
  EXPECT_FALSE(valid_public_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));  // 48
}

}  // namespace
}  // namespace cordon::control::wireguard
