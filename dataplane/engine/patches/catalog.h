// The built-in patch catalog: virtual patches for vulnerabilities that the makers of
// legacy medical devices will never fix. Ids are contract (DESIGN.md §3). Immutable
// static data; any thread.
#pragma once

#include <span>
#include <string_view>

#include "dataplane/engine/policy_document.h"

namespace cordon::engine {

struct CatalogPatch {
  std::string_view id;
  std::string_view title;
  std::string_view references;  // CVEs and advisories, comma separated
  std::string_view protocol;
  std::string_view ports;
  std::string_view matches;  // what it matches, in words for operators
  PatchAction default_action;
};

std::span<const CatalogPatch> patch_catalog();
const CatalogPatch* find_catalog_patch(std::string_view id);

}  // namespace cordon::engine
