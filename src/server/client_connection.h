// Whether the client of a request is still connected, for responses that are not streamed (a
// stream notices a client that went away when its next write fails). cpp-httplib 0.11, the
// version Debian 12 ships, gives a handler neither its socket nor a way to ask
// (Request::is_connection_closed came much later), only the connection's addresses; so the
// socket is found among the process's open descriptors as the one with those local and peer
// addresses. A TCP connection is the only socket with that pair of addresses, and its
// descriptor stays open while the handler runs (httplib closes it after the handler returns).
#pragma once

#include <string>

namespace moe::server {

class ClientConnection {
 public:
  // Returns the connection whose local and peer addresses (numeric IPv4 or IPv6 text, as httplib
  // reports them) are these, or an unwatched one when no socket of the process has them.
  static ClientConnection find(const std::string& local_addr, int local_port, const std::string& remote_addr,
                               int remote_port);

  // Returns whether a socket was found: an unwatched connection is always taken to be open.
  bool watched() const { return fd_ >= 0; }
  // Returns false once the client has closed or reset the connection (it cannot read a response
  // any more); never blocks.
  bool open() const;

 private:
  explicit ClientConnection(int fd) : fd_(fd) {}
  int fd_ = -1;  // not owned
};

}  // namespace moe::server
