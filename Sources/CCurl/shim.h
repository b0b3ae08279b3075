#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
// libcurl's easy interface for the list downloader (ListDownload/HTTPDownload.swift, its one
// owner). curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: each use
// gets a typed wrapper here, prefixed tr_curl_.
#include <curl/curl.h>

typedef size_t (*tr_curl_data_fn)(char *bytes, size_t size, size_t count, void *context);
typedef int (*tr_curl_progress_fn)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
typedef int (*tr_curl_sockopt_fn)(void *context, curl_socket_t fd, curlsocktype purpose);

static inline CURLcode tr_curl_set_long(CURL *h, CURLoption option, long value) {
    return curl_easy_setopt(h, option, value);
}
static inline CURLcode tr_curl_set_offset(CURL *h, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(h, option, value);
}
static inline CURLcode tr_curl_set_string(CURL *h, CURLoption option, const char *value) {
    return curl_easy_setopt(h, option, value);
}
static inline CURLcode tr_curl_set_pointer(CURL *h, CURLoption option, void *value) {
    return curl_easy_setopt(h, option, value);
}
static inline CURLcode tr_curl_set_list(CURL *h, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(h, option, value);
}
static inline CURLcode tr_curl_set_data_function(CURL *h, CURLoption option, tr_curl_data_fn fn) {
    return curl_easy_setopt(h, option, fn);
}
static inline CURLcode tr_curl_set_sockopt_function(CURL *h, tr_curl_sockopt_fn fn) {
    return curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, fn);
}
static inline CURLcode tr_curl_set_progress_function(CURL *h, tr_curl_progress_fn fn) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fn);
}
static inline CURLcode tr_curl_info_long(CURL *h, CURLINFO info, long *value) {
    return curl_easy_getinfo(h, info, value);
}
static inline CURLcode tr_curl_info_string(CURL *h, CURLINFO info, char **value) {
    return curl_easy_getinfo(h, info, value);
}
#endif
