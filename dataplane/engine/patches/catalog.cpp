#include "dataplane/engine/patches/catalog.h"

#include <algorithm>
#include <array>

namespace cordon::engine {
namespace {

constexpr std::array kCatalog = {
    CatalogPatch{"smb1-block", "Block SMB version 1",
                 "MS17-010, CVE-2017-0143, CVE-2017-0144, CVE-2017-0145, CVE-2017-0146, "
                 "CVE-2017-0148",
                 "smb", "tcp/139, tcp/445",
                 "any SMB1 message (protocol id 0xFF 'SMB'), the WannaCry/NotPetya family",
                 PatchAction::reset},
    CatalogPatch{"ms17-010", "EternalBlue / DoublePulsar indicators",
                 "MS17-010, CVE-2017-0144, CVE-2017-0145", "smb", "tcp/139, tcp/445",
                 "SMB1 Trans2/NT Trans requests with inconsistent parameter/data counts and "
                 "the DoublePulsar SESSION_SETUP ping",
                 PatchAction::reset},
    CatalogPatch{"cve-2019-0708", "BlueKeep: RDP MS_T120 channel request", "CVE-2019-0708", "rdp",
                 "tcp/3389",
                 "an MCS Connect Initial whose client network data requests the MS_T120 "
                 "virtual channel",
                 PatchAction::reset},
    CatalogPatch{"dicom-pdu-sanity", "DICOM upper-layer PDU sanity", "PS3.8 section 9", "dicom",
                 "any DICOM rule port",
                 "PDU and item lengths inconsistent with each other or the stream, unknown PDU "
                 "types, illegal AE titles, PDUs above the negotiated maximum length",
                 PatchAction::drop},
};

}  // namespace

std::span<const CatalogPatch> patch_catalog() {
  return kCatalog;
}

const CatalogPatch* find_catalog_patch(std::string_view id) {
  auto it = std::find_if(kCatalog.begin(), kCatalog.end(),
                         [id](const CatalogPatch& p) { return p.id == id; });
  return it == kCatalog.end() ? nullptr : &*it;
}

}  // namespace cordon::engine
