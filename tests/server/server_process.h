// Runs `moe serve` as a child process on a free loopback port for HTTP tests, and small helpers
// for requests and server-sent events.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace moe::server::testing {

using json = nlohmann::json;

inline std::string default_model_path() { return std::string(MOE_SOURCE_DIR) + "/models/kjv-moe-q8_0.gguf"; }

class ServerProcess {
 public:
  // Starts the server with the default model and `extra` arguments; throws when it does not
  // report its port within a minute.
  explicit ServerProcess(const std::vector<std::string>& extra) : ServerProcess(default_model_path(), extra) {}

  // The same with the model at `model_path`.
  ServerProcess(const std::string& model_path, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {MOE_CLI_PATH, "serve", "-m", model_path, "--port", "0", "-t", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
    out_fd_ = fds[0];
    port_ = read_port();
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(std::chrono::seconds(120));
    return c;
  }

  // Sends SIGTERM and returns the exit status (-1 unless it exited normally within a minute).
  int terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; ++i) {
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

 private:
  int read_port() {
    std::string text;
    const std::string marker = "listening on http://127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buffer[256];
      const ssize_t n = read(out_fd_, buffer, sizeof(buffer));
      if (n <= 0) break;
      text.append(buffer, static_cast<size_t>(n));
      const size_t at = text.find(marker);
      if (at != std::string::npos && text.find(' ', at + marker.size()) != std::string::npos) {
        return std::stoi(text.substr(at + marker.size()));
      }
    }
    throw std::runtime_error("moe serve did not start: " + text);
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
};

struct HttpReply {
  int status = 0;  // 0: no response (connection failed)
  std::string body;
  httplib::Headers headers;
  json json_body() const { return json::parse(body, nullptr, false); }
};

inline HttpReply post(const ServerProcess& server, const std::string& path, const std::string& body,
                      const httplib::Headers& headers = {}) {
  httplib::Client c = server.client();
  auto res = c.Post(path.c_str(), headers, body, "application/json");
  if (!res) return {};
  return {res->status, res->body, res->headers};
}

inline HttpReply get(const ServerProcess& server, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client c = server.client();
  auto res = c.Get(path.c_str(), headers);
  if (!res) return {};
  return {res->status, res->body, res->headers};
}

// A streamed response: the "data:" payloads in order.
struct StreamReply {
  int status = 0;
  std::vector<std::string> events;
  bool complete() const { return !events.empty() && events.back() == "[DONE]"; }
  // Returns the concatenated text of all chunks (chat deltas or completion texts) of choice 0.
  std::string text() const {
    std::string out;
    for (const std::string& e : events) {
      if (e == "[DONE]") continue;
      const json chunk = json::parse(e, nullptr, false);
      if (!chunk.contains("choices")) continue;
      for (const json& c : chunk["choices"]) {
        if (c.value("index", 0) != 0) continue;
        if (c.contains("delta") && c["delta"].contains("content")) out += c["delta"]["content"].get<std::string>();
        if (c.contains("text")) out += c["text"].get<std::string>();
      }
    }
    return out;
  }
};

// POSTs a streaming request; `keep_going(events so far)` may return false to hang up mid-stream.
inline StreamReply post_stream(const ServerProcess& server, const std::string& path, const std::string& body,
                               const std::function<bool(const std::vector<std::string>&)>& keep_going = {}) {
  httplib::Client c = server.client();
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  StreamReply reply;
  std::string buffer;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) == 0) reply.events.push_back(event.substr(6));
    }
    return !keep_going || keep_going(reply.events);
  };
  auto res = c.send(req);
  if (res) reply.status = res->status;
  return reply;
}

// Connects and sends a POST without reading the reply, so the caller can hang up while it is
// generated; returns the socket (-1 when the connection failed).
inline int post_without_reading(const ServerProcess& server, const std::string& path, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server.port()));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Returns the value of an unlabelled metric in /metrics (-1 when missing).
inline double metric(const ServerProcess& server, const std::string& name) {
  const HttpReply r = get(server, "/metrics");
  const std::string key = "\n" + name + " ";
  const size_t at = ("\n" + r.body).find(key);
  if (at == std::string::npos) return -1;
  return std::stod(("\n" + r.body).substr(at + key.size()));
}

}  // namespace moe::server::testing
