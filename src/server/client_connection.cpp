#include "server/client_connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace moe::server {

namespace {

// One end of a TCP connection in a form that compares as the kernel reports it.
struct Endpoint {
  int family = 0;
  uint16_t port = 0;
  std::array<uint8_t, 16> ip{};  // IPv4 in the first 4 bytes
  bool operator==(const Endpoint&) const = default;
};

// Returns the endpoint of a numeric address and port, or nothing when they are not one.
std::optional<Endpoint> parse_endpoint(const std::string& addr, int port) {
  if (port < 0 || port > 65535) return std::nullopt;
  Endpoint e;
  e.port = static_cast<uint16_t>(port);
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, addr.c_str(), e.ip.data()) == 1) {
      e.family = family;
      return e;
    }
  }
  return std::nullopt;
}

// Returns the socket's own (peer = false) or peer address, or nothing when it has none (not an
// IP socket, not connected).
std::optional<Endpoint> socket_endpoint(int fd, bool peer) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* sa = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? getpeername(fd, sa, &length) : getsockname(fd, sa, &length)) != 0) return std::nullopt;
  Endpoint e;
  e.family = address.ss_family;
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    e.port = ntohs(in->sin_port);
    std::memcpy(e.ip.data(), &in->sin_addr, sizeof(in->sin_addr));
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    e.port = ntohs(in6->sin6_port);
    std::memcpy(e.ip.data(), &in6->sin6_addr, sizeof(in6->sin6_addr));
  } else {
    return std::nullopt;
  }
  return e;
}

}  // namespace

ClientConnection ClientConnection::find(const std::string& local_addr, int local_port, const std::string& remote_addr,
                                        int remote_port) {
  const std::optional<Endpoint> local = parse_endpoint(local_addr, local_port);
  const std::optional<Endpoint> remote = parse_endpoint(remote_addr, remote_port);
  if (!local || !remote) return ClientConnection(-1);
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return ClientConnection(-1);
  int found = -1;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    struct stat st {};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    const int candidate = static_cast<int>(fd);
    if (socket_endpoint(candidate, false) == local && socket_endpoint(candidate, true) == remote) {
      found = candidate;
      break;
    }
  }
  closedir(dir);
  return ClientConnection(found);
}

bool ClientConnection::open() const {
  if (fd_ < 0) return true;
  // POLLRDHUP: the client sent FIN (closed, or shut down its sending side: either way it has
  // walked away from the request). POLLIN is not asked for, so a request the client pipelined
  // after this one does not count as a close. POLLHUP and POLLERR (reset) come unasked.
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return true;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0;
}

}  // namespace moe::server
