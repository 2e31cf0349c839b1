// Boost.JSON compiled into the engine from its header-only form, so it is built with the
// same flags and sanitizers as the code that parses untrusted policy documents.
#include <boost/json/src.hpp>
