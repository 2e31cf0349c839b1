// The appliance's WireGuard key pair: X25519 from libsodium, clamped like `wg genkey`,
// base64 like `wg genkey` / `wg pubkey`.
//
// The private key lives only in its file (mode 0600, created with O_EXCL so a
// pre-existing file is never trusted blindly) and is never returned, logged or put on a
// command line: the interface is configured from the file (`wg set ... private-key FILE`).
//
// Threads: free functions without shared state; two processes creating the same file
// race safely (O_EXCL: one creates it, the other reads it).
#pragma once

#include <string>
#include <string_view>

#include "control/common/result.h"

namespace cordon::control::wireguard {

// True for a base64 WireGuard key (44 characters, 32 bytes).
bool valid_public_key(std::string_view base64);

// Creates the private key file on first use (0600); returns the public key (base64).
// An existing file must be a regular file readable by its owner only and hold one key;
// anything else is an error (code "invalid" or "io") and the file is left alone.
Result<std::string> ensure_private_key(const std::string& path);

}  // namespace cordon::control::wireguard
