#include "core/http/url.h"

#include <algorithm>
#include <cctype>

namespace bkd {

std::string url_host(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  if (!authority.empty() && authority[0] == '[') {  // [::1]:8080
    auto close = authority.find(']');
    return authority.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  if (auto colon = authority.find(':'); colon != std::string::npos) authority = authority.substr(0, colon);
  std::transform(authority.begin(), authority.end(), authority.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return authority;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  if (host.rfind("127.", 0) != 0) return false;
  return std::all_of(host.begin(), host.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

bool is_loopback_url(const std::string& url) { return is_loopback_host(url_host(url)); }

std::string url_problem(const std::string& url) {
  if (url.empty()) return "it is empty";
  for (unsigned char c : url)
    if (c <= ' ' || c == 0x7f) return "it contains a space or a control character";
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "it has no scheme (expected http:// or https://)";
  std::string scheme = url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") return "its scheme is '" + scheme + "' (expected http or https)";
  const std::string host = url_host(url);
  if (host.empty()) return "it has no host";
  const size_t authority = scheme_end + 3;
  const size_t end = url.find_first_of("/?#", authority);
  std::string auth = url.substr(authority, end == std::string::npos ? std::string::npos : end - authority);
  if (const size_t at = auth.rfind('@'); at != std::string::npos) auth = auth.substr(at + 1);  // user:password@
  const size_t colon = auth.rfind(':');
  if (colon != std::string::npos && auth.find(']') == std::string::npos) {
    const std::string port = auth.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
        std::stoi(port) > 65535)
      return "its port '" + port + "' is not a number from 0 to 65535";
  }
  return {};
}

std::string url_without_credentials(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  const size_t end = url.find_first_of("/?#", start);
  const size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + "***@" + url.substr(at + 1);
}

std::string join_url(const std::string& base, const std::string& path) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  size_t i = 0;
  while (i < path.size() && path[i] == '/') ++i;
  return b + "/" + path.substr(i);
}

}  // namespace bkd
