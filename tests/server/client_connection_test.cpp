// ClientConnection: the server side of a loopback connection is found by its addresses and
// reads as open until the client closes or resets it; data the client sends (a pipelined
// request) is not a close; addresses that name no socket, or are not addresses, give an
// unwatched connection that always reads as open.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "server/client_connection.h"

namespace moe::server {
namespace {

// Returns the port a socket is bound to (IPv4 or IPv6: the port sits at the same offset).
int port_of(int fd) {
  sockaddr_in6 address{};
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin6_port);
}

// A connected loopback pair over `ip` (127.0.0.1 or ::1): `client` and the server's accepted
// end, `server` (-1 when the machine has no such loopback).
struct LoopbackPair {
  std::string ip;
  int listener = -1, client = -1, server = -1;
  explicit LoopbackPair(std::string loopback = "127.0.0.1") : ip(std::move(loopback)) {
    const int family = ip.find(':') == std::string::npos ? AF_INET : AF_INET6;
    sockaddr_in6 address{};  // large enough for either
    socklen_t length = 0;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&address);
      in->sin_family = AF_INET;
      inet_pton(AF_INET, ip.c_str(), &in->sin_addr);
      length = sizeof(sockaddr_in);
    } else {
      address.sin6_family = AF_INET6;
      inet_pton(AF_INET6, ip.c_str(), &address.sin6_addr);
      length = sizeof(sockaddr_in6);
    }
    auto* sa = reinterpret_cast<sockaddr*>(&address);
    listener = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, sa, length) != 0 || listen(listener, 1) != 0) return;
    getsockname(listener, sa, &length);
    client = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(client, sa, length) != 0) return;
    server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  }
  ~LoopbackPair() {
    for (int fd : {listener, client, server}) {
      if (fd >= 0) close(fd);
    }
  }
  ClientConnection find() const { return ClientConnection::find(ip, port_of(listener), ip, port_of(client)); }
};

// Polls until the connection reads as closed (the FIN or RST takes a moment); bounded.
bool becomes_closed(const ClientConnection& c) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (c.open()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(ClientConnection, OpenUntilTheClientCloses) {
  LoopbackPair pair;
  ASSERT_GE(pair.server, 0);
  const ClientConnection c = pair.find();
  ASSERT_TRUE(c.watched());
  EXPECT_TRUE(c.open());
  close(pair.client);
  pair.client = -1;
  EXPECT_TRUE(becomes_closed(c));
}

TEST(ClientConnection, Ipv6ConnectionIsFound) {
  LoopbackPair pair("::1");
  if (pair.server < 0) GTEST_SKIP() << "no IPv6 loopback";
  const ClientConnection c = pair.find();
  ASSERT_TRUE(c.watched());
  EXPECT_TRUE(c.open());
  close(pair.client);
  pair.client = -1;
  EXPECT_TRUE(becomes_closed(c));
}

TEST(ClientConnection, ResetIsAClose) {
  LoopbackPair pair;
  ASSERT_GE(pair.server, 0);
  const ClientConnection c = pair.find();
  ASSERT_TRUE(c.watched());
  const linger abort_on_close{1, 0};  // close() sends RST instead of FIN
  setsockopt(pair.client, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  close(pair.client);
  pair.client = -1;
  EXPECT_TRUE(becomes_closed(c));
}

TEST(ClientConnection, DataFromTheClientIsNotAClose) {
  LoopbackPair pair;
  ASSERT_GE(pair.server, 0);
  const ClientConnection c = pair.find();
  ASSERT_TRUE(c.watched());
  const std::string next_request = "GET /health HTTP/1.1\r\n\r\n";
  ASSERT_EQ(send(pair.client, next_request.data(), next_request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(next_request.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the bytes arrive
  EXPECT_TRUE(c.open());
  char buffer[64];
  EXPECT_EQ(recv(pair.server, buffer, sizeof(buffer), MSG_PEEK), static_cast<ssize_t>(next_request.size()));
}

TEST(ClientConnection, AddressesOfNoSocketOrNoAddressAreUnwatched) {
  LoopbackPair pair;
  ASSERT_GE(pair.server, 0);
  const int listen_port = port_of(pair.listener), client_port = port_of(pair.client);
  // The client's own end (local and peer swapped) is a socket of this process too, but the
  // server's end is the one asked for; the swapped pair finds the client's end.
  EXPECT_TRUE(ClientConnection::find("127.0.0.1", client_port, "127.0.0.1", listen_port).watched());
  const ClientConnection wrong_peer = ClientConnection::find("127.0.0.1", listen_port, "127.0.0.1", 1);
  EXPECT_FALSE(wrong_peer.watched());
  EXPECT_TRUE(wrong_peer.open());
  EXPECT_FALSE(ClientConnection::find("127.0.0.2", listen_port, "127.0.0.1", client_port).watched());
  EXPECT_FALSE(ClientConnection::find("::1", listen_port, "127.0.0.1", client_port).watched());
  for (const char* bad : {"", "localhost", "127.0.0.1:80", "300.1.1.1", "fe80::1%nosuchif"}) {
    const ClientConnection c = ClientConnection::find(bad, listen_port, "127.0.0.1", client_port);
    EXPECT_FALSE(c.watched()) << bad;
    EXPECT_TRUE(c.open()) << bad;
  }
  for (int bad_port : {-1, 65536, 1 << 20}) {
    EXPECT_FALSE(ClientConnection::find("127.0.0.1", bad_port, "127.0.0.1", client_port).watched()) << bad_port;
    EXPECT_FALSE(ClientConnection::find("127.0.0.1", listen_port, "127.0.0.1", bad_port).watched()) << bad_port;
  }
}

}  // namespace
}  // namespace moe::server
