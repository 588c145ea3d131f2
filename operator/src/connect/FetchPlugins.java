// Downloads a KafkaConnect's connector plugins before the worker starts (the init
// container `plugins`, run by the worker image's JVM as a single-file source program).
// Rendered by runnel-operator (operator/src/connect/plugins.rs); do not edit the copy in a
// ConfigMap.
//
//   java FetchPlugins.java PLAN DEST
//
// PLAN has one artifact per line, tab-separated: plugin, kind (file|zip|tgz), url,
// sha512 (or -), file name (or -). Each plugin's directory DEST/<plugin> is emptied, then
// every artifact is downloaded (TLS verified by the JVM, redirects followed, transient
// errors retried), its SHA-512 checked when given, and stored (file) or unpacked (zip,
// tgz). The first failure is printed and written to /dev/termination-log, where the
// operator reads it, and the container exits 1.
import java.io.*;
import java.net.URI;
import java.net.http.*;
import java.nio.file.*;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.*;
import java.util.zip.*;

public class FetchPlugins {
    static final class Failure extends Exception {
        Failure(String m) { super(m); }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: FetchPlugins PLAN DEST");
            System.exit(2);
        }
        try {
            run(Paths.get(args[0]), Paths.get(args[1]));
        } catch (Failure f) {
            String m = "plugin download failed: " + f.getMessage();
            System.err.println(m);
            try {
                Files.writeString(Paths.get("/dev/termination-log"), m);
            } catch (IOException | RuntimeException ignored) {
                // The operator falls back to the container log.
            }
            System.exit(1);
        }
    }

    static void run(Path plan, Path dest) throws Exception {
        HttpClient http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(20))
                .build();
        Set<String> emptied = new HashSet<>();
        for (String line : Files.readAllLines(plan)) {
            if (line.isBlank() || line.startsWith("#")) continue;
            String[] f = line.split("\t", -1);
            if (f.length != 5) throw new Failure("bad plan line: " + line);
            String plugin = f[0], kind = f[1], url = f[2], sha = f[3], name = f[4];
            Path dir = dest.resolve(plugin).normalize();
            if (!dir.getParent().equals(dest.normalize())) throw new Failure("bad plugin name " + plugin);
            if (emptied.add(plugin)) {
                deleteTree(dir);
                Files.createDirectories(dir);
            }
            Path tmp = dir.resolve(".download");
            String got = download(http, url, tmp);
            if (!sha.equals("-") && !sha.equalsIgnoreCase(got)) {
                Files.deleteIfExists(tmp);
                throw new Failure("checksum mismatch for " + url + " (plugin " + plugin
                        + "): sha512sum is " + got + ", the spec expects " + sha.toLowerCase(Locale.ROOT));
            }
            switch (kind) {
                case "file":
                    Path to = dir.resolve(name).normalize();
                    if (!to.getParent().equals(dir)) throw new Failure("bad file name " + name);
                    Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING);
                    break;
                case "zip":
                    unzip(tmp, dir, url);
                    Files.delete(tmp);
                    break;
                case "tgz":
                    untar(tmp, dir, url);
                    Files.delete(tmp);
                    break;
                default:
                    throw new Failure("unknown artifact kind " + kind);
            }
            System.out.println("fetched " + url + " into " + dir + " (sha512 " + got + ")");
        }
    }

    /** Downloads `url` to `to` and returns its SHA-512 (hex). Retries transient errors. */
    static String download(HttpClient http, String url, Path to) throws Exception {
        URI uri;
        try {
            uri = URI.create(url);
        } catch (IllegalArgumentException e) {
            throw new Failure("bad URL " + url);
        }
        String last = "";
        for (int attempt = 1; attempt <= 4; attempt++) {
            try {
                HttpRequest req = HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(5)).GET().build();
                HttpResponse<InputStream> resp = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
                int code = resp.statusCode();
                if (code / 100 != 2) {
                    resp.body().close();
                    String m = "cannot download " + url + ": HTTP " + code;
                    if (code >= 500 || code == 429) {
                        last = m;
                        Thread.sleep(1000L * attempt);
                        continue;
                    }
                    throw new Failure(m);
                }
                MessageDigest md = MessageDigest.getInstance("SHA-512");
                try (InputStream in = new DigestInputStream(resp.body(), md);
                     OutputStream out = Files.newOutputStream(to)) {
                    in.transferTo(out);
                }
                return HexFormat.of().formatHex(md.digest());
            } catch (IOException e) {
                last = "cannot download " + url + ": " + describe(e);
                Thread.sleep(1000L * attempt);
            }
        }
        throw new Failure(last);
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (sb.length() > 0) sb.append(": ");
            sb.append(t.getClass().getSimpleName());
            if (t.getMessage() != null) sb.append(" (").append(t.getMessage()).append(")");
        }
        return sb.toString();
    }

    static final class DigestInputStream extends FilterInputStream {
        final MessageDigest md;
        DigestInputStream(InputStream in, MessageDigest md) { super(in); this.md = md; }
        @Override public int read() throws IOException {
            int b = super.read();
            if (b >= 0) md.update((byte) b);
            return b;
        }
        @Override public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) md.update(b, off, n);
            return n;
        }
    }

    /** `name` under `dir`, refusing entries that would leave it. */
    static Path inside(Path dir, String name, String url) throws Failure {
        Path p;
        try {
            p = dir.resolve(name).normalize();
        } catch (InvalidPathException e) {
            // A name the JVM cannot encode in the file name charset of its locale (the
            // init container sets LC_ALL=C.UTF-8), or one with a NUL.
            throw new Failure("archive " + url + " has an entry whose name is not a file name here ("
                    + System.getProperty("sun.jnu.encoding") + "): " + e.getInput());
        }
        if (!p.startsWith(dir))
            throw new Failure("archive " + url + " has an entry outside its directory: " + name);
        return p;
    }

    static void unzip(Path archive, Path dir, String url) throws Exception {
        try (ZipInputStream z = new ZipInputStream(Files.newInputStream(archive))) {
            for (ZipEntry e; (e = z.getNextEntry()) != null; ) {
                Path p = inside(dir, e.getName(), url);
                if (e.isDirectory()) {
                    Files.createDirectories(p);
                } else {
                    Files.createDirectories(p.getParent());
                    Files.copy(z, p, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (ZipException e) {
            throw new Failure("cannot unpack " + url + " as a zip: " + e.getMessage());
        }
    }

    /** A gzipped tar (ustar, with GNU long names and pax paths); regular files and directories. */
    static void untar(Path archive, Path dir, String url) throws Exception {
        try (InputStream in = new BufferedInputStream(new GZIPInputStream(Files.newInputStream(archive)))) {
            byte[] h = new byte[512];
            String longName = null;
            while (true) {
                if (in.readNBytes(h, 0, 512) < 512) throw new Failure("truncated tar " + url);
                boolean zero = true;
                for (byte b : h) if (b != 0) { zero = false; break; }
                if (zero) return;
                String name = str(h, 0, 100);
                String prefix = str(h, 345, 155);
                if (!prefix.isEmpty() && h[257] == 'u') name = prefix + "/" + name;
                long size = Long.parseLong(("0" + str(h, 124, 12).trim()), 8);
                char type = (char) h[156];
                byte[] body = null;
                if (type == 'L' || type == 'x') {
                    body = in.readNBytes((int) size);
                    skipPadding(in, size);
                }
                if (type == 'L') {
                    longName = new String(body, java.nio.charset.StandardCharsets.UTF_8).replace("\0", "");
                    continue;
                }
                if (type == 'x') {
                    for (String rec : new String(body, java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
                        int sp = rec.indexOf(' ');
                        if (sp > 0 && rec.startsWith("path=", sp + 1)) longName = rec.substring(sp + 6);
                    }
                    continue;
                }
                if (type == 'g') {
                    in.skipNBytes(size);
                    skipPadding(in, size);
                    continue;
                }
                if (longName != null) {
                    name = longName;
                    longName = null;
                }
                Path p = inside(dir, name, url);
                if (type == '5') {
                    Files.createDirectories(p);
                } else if (type == '0' || type == 0 || type == '7') {
                    Files.createDirectories(p.getParent());
                    try (OutputStream out = Files.newOutputStream(p)) {
                        long left = size;
                        byte[] buf = new byte[65536];
                        while (left > 0) {
                            int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                            if (n < 0) throw new Failure("truncated tar " + url);
                            out.write(buf, 0, n);
                            left -= n;
                        }
                    }
                    skipPadding(in, size);
                } else {
                    // Links and special files are not plugin content.
                    in.skipNBytes(size);
                    skipPadding(in, size);
                }
            }
        } catch (ZipException | EOFException | NumberFormatException e) {
            throw new Failure("cannot unpack " + url + " as a gzipped tar: " + e.getMessage());
        }
    }

    static void skipPadding(InputStream in, long size) throws IOException {
        long pad = (512 - size % 512) % 512;
        in.skipNBytes(pad);
    }

    static String str(byte[] h, int off, int len) {
        int end = off;
        while (end < off + len && h[end] != 0) end++;
        return new String(h, off, end - off, java.nio.charset.StandardCharsets.UTF_8);
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(p)) {
                for (Path c : ds) deleteTree(c);
            }
        }
        Files.delete(p);
    }
}
