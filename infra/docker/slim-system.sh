#!/bin/sh
# Removes from the sage_ops image's Debian system what its processes never run, so every run's
# container pulls less; the final stage copies the result onto an empty image (FROM scratch), so
# the removed files cost no layer. It keeps a shell and the core utilities (ECS Exec, operators'
# debugging), Python, git with OpenSSH's client (deploy keys), CA certificates and the C libraries
# they link.
# - Packages, purged through dpkg so that /var/lib/dpkg/status still lists what the image holds
#   (image scanners read it): the package manager (apt, its keys), perl (git's commands that
#   sage_ops runs are built in; perl is for git's scripts such as git-svn), debconf and the
#   account, login, PAM and disk tools (the user is created before they go; nothing logs in).
# - git's programs that sage_ops never runs, each a 2 MB copy of libgit: serving (daemon, shell,
#   http-backend), pushing over HTTP, mail, scalar, and the gettext helper of its shell scripts.
# - the standard library's Python sources, keeping its byte code beside each module (as
#   slim-venv.sh does for the dependencies: a traceback line into it shows file and line number,
#   not the source line);
# - glibc's iconv modules for legacy character sets (8 MB; Python never uses iconv, and git only
#   to re-encode commits declaring an encoding other than UTF-8), CPython's own test modules,
#   caches and logs.
# Then every ELF file left must find all its libraries (ldd), which proves nothing linked went.
set -eu
installed() { dpkg-query -W -f '${db:Status-Abbrev}${binary:Package}\n' "$@" 2>/dev/null \
    | sed -n 's/^ii *//p' | sed 's/:.*//'; }
# shellcheck disable=SC2046  # word splitting of the package list is wanted
dpkg --purge --force-remove-essential --force-depends $(installed \
    apt libapt-pkg6.0 gpgv debian-archive-keyring apt-transport-https \
    perl perl-base perl-modules-5.36 libperl5.36 libgdbm6 libgdbm-compat4 liberror-perl \
    git-man debconf adduser passwd login libpam-modules libpam-modules-bin libpam-runtime libpam0g \
    libsemanage2 libsemanage-common libsepol2 libaudit1 libaudit-common libcap-ng0 \
    util-linux util-linux-extra mount libmount1 libfdisk1 libsmartcols1 libblkid1 libudev1 \
    e2fsprogs libext2fs2 libss2 logsave libseccomp2 sysvinit-utils libfido2-1 libcbor0.8) \
    >/dev/null 2>&1
git_core=/usr/lib/git-core
rm -f /usr/bin/scalar /usr/bin/git-shell "$git_core"/scalar "$git_core"/git-shell \
    "$git_core"/git-daemon "$git_core"/git-http-backend "$git_core"/git-http-push \
    "$git_core"/git-http-fetch "$git_core"/git-imap-send "$git_core"/git-sh-i18n--envsubst
# OpenSSH: git runs ssh alone (GIT_SSH_COMMAND with the deploy key's file); no agent, key tools,
# security-key (libfido2) or PKCS#11 helpers.
rm -rf /usr/bin/ssh-add /usr/bin/ssh-agent /usr/bin/ssh-argv0 /usr/bin/ssh-copy-id \
    /usr/bin/ssh-keygen /usr/bin/ssh-keyscan /usr/lib/openssh
gconv="$(echo /usr/lib/*-linux-gnu/gconv)"
find "$gconv" -type f ! -name 'gconv-modules*' ! -name 'UTF-*' ! -name 'UNICODE.so' \
    ! -name 'ISO8859-1.so' ! -name 'ISO8859-15.so' -delete
for stdlib in /usr/lib/python3.11 /usr/local/lib/python3.11; do
    [ -d "$stdlib" ] || continue
    rm -rf "$stdlib/test" "$stdlib"/lib-dynload/_*test*.so "$stdlib"/lib-dynload/xx*.so
    python3 -m compileall -q -b -j 0 "$stdlib" >/dev/null || true  # a source that fails stays
    find "$stdlib" -name '*.py' -type f | while read -r source; do
        [ ! -f "${source}c" ] || rm "$source"
    done
    find "$stdlib" -name __pycache__ -type d -prune -exec rm -rf {} +
done
rm -rf /var/cache/debconf /var/cache/apt /var/lib/apt /var/log/* /etc/apt /usr/share/keyrings \
    /etc/dpkg/dpkg.cfg.d/no-perl-modules
missing="$(find / -xdev -type f \( -perm -u+x -o -name '*.so*' \) \
    ! -path '/proc/*' ! -path '/sys/*' -print 2>/dev/null \
    | while read -r file; do
        head -c 4 "$file" | grep -q 'ELF' || continue
        ldd "$file" 2>/dev/null | sed -n "s|^\t\(.*\) => not found|$file: \1|p"
    done)"
[ -z "$missing" ] || { echo "slim-system.sh: unresolved libraries:" "$missing" >&2; exit 1; }
python3 -c 'import asyncio, email, http.client, json, sqlite3, ssl, venv, zoneinfo'
