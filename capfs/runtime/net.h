// capfs runtime sockets: everything of //capfs/runtime:net.
//
//   socket_address.h  SocketAddress: IPv4, IPv6, Unix paths, abstract names
//   socket.h          Listen, Accept, Connect, BindDatagram, SocketPair,
//                     LocalAddress, PeerAddress, Shutdown, SendTo, RecvFrom
//   fd_passing.h      SendMsg, RecvMsg: descriptors over Unix sockets
//   dir_passing.h     SendDir, RecvDir: a Dir, as attenuated, to another
//                     process
//
// Sockets are AsyncFds: fd_io.h's Read, Write, ReadV, WriteV and WriteAll
// serve them, and none of them ever raises SIGPIPE.

#ifndef CAPFS_RUNTIME_NET_H_
#define CAPFS_RUNTIME_NET_H_

#include "capfs/runtime/dir_passing.h"
#include "capfs/runtime/fd_passing.h"
#include "capfs/runtime/socket.h"
#include "capfs/runtime/socket_address.h"

#endif  // CAPFS_RUNTIME_NET_H_
