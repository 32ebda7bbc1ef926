#pragma once
// Just enough URL handling to decide whether a request would leave this machine.
#include <string>

namespace bkd {

std::string url_host(const std::string& url);     // "http://127.0.0.1:8080/v1" -> "127.0.0.1"
bool is_loopback_host(const std::string& host);   // localhost, 127.0.0.0/8, ::1
bool is_loopback_url(const std::string& url);
// Empty when `url` is an absolute http(s) URL with a host and nothing else odd; otherwise what is
// wrong with it ("ftp//not a url": no scheme).
std::string url_problem(const std::string& url);
// The URL with any "user:password@" replaced by "***@", for messages.
std::string url_without_credentials(const std::string& url);
std::string join_url(const std::string& base, const std::string& path);  // one slash between

}  // namespace bkd
