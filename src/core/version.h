#ifndef IPLOCK_VERSION_H
#define IPLOCK_VERSION_H
#define IPLOCK_VERSION "0.1.0"
#endif
