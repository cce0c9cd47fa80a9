#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/limits.h"

namespace evit {
namespace {

// Closes a descriptor on every path out of a function.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void check_regular_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    EVIT_THROW("cannot open ", what, " '", path, "': ", std::strerror(errno));
  EVIT_CHECK(!S_ISDIR(st.st_mode), "'", path, "' is a directory; expected a ", what);
  EVIT_CHECK(S_ISREG(st.st_mode), "'", path, "' is not a regular file (a device, pipe or socket); expected a ", what);
}

std::string read_file(const std::string& path) {
  check_regular_file(path);
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  EVIT_CHECK(f.fd >= 0, "cannot open '", path, "' for reading: ", std::strerror(errno));
  struct stat st {};
  EVIT_CHECK(::fstat(f.fd, &st) == 0, "cannot stat '", path, "': ", std::strerror(errno));
  const int64_t limit = max_file_bytes();
  EVIT_CHECK(st.st_size <= limit, "'", path, "' is ", human_bytes(double(st.st_size)), ", above the limit of ",
             human_bytes(double(limit)), " for files read whole (set EVIT_MAX_FILE_BYTES to allow it)");
  std::string s(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = ::read(f.fd, s.data() + got, s.size() - got);
    if (n < 0 && errno == EINTR) continue;
    EVIT_CHECK(n >= 0, "error reading '", path, "': ", std::strerror(errno));
    if (n == 0) break;  // the file shrank while we read it
    got += static_cast<size_t>(n);
  }
  s.resize(got);
  return s;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  struct stat st {};
  EVIT_CHECK(!(::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)), "cannot write '", path,
             "': it is a directory");
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* what) {
    const int err = errno;
    std::remove(tmp.c_str());
    EVIT_THROW("cannot write '", path, "' (", what, " '", tmp, "'): ", std::strerror(err));
  };
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) fail("opening");
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(f.fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("writing");
      done += static_cast<size_t>(n);
    }
    // On disk before the rename publishes it: after a power loss the name never points at a
    // file whose blocks were not written.
    if (::fsync(f.fd) != 0) fail("flushing");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming");
}

}  // namespace evit
