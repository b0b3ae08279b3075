#ifndef CLDNS_SHIM_H
#define CLDNS_SHIM_H
// ldns defines its own `bool` unless <stdbool.h> came first; Swift would then see Int8.
#include <stdbool.h>
#include <ldns/ldns.h>
#endif
