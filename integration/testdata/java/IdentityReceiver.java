// A plain-JDK mutual-TLS receiver that authorizes its caller by workload
// identity: the SPIFFE ID in the URI SAN of the client certificate
// (X509Certificate.getSubjectAlternativeNames(), type 6). It is keyed with
// the keystore.p12 and trusts the truststore.p12 that `certmint agent
// --out DIR` writes. Run with the JDK's single-file launcher:
//
//   java IdentityReceiver.java PORT KEYSTORE TRUSTSTORE PASSWORD ALLOWED-ID...
//
// PORT 0 picks a free port; the first line on stdout is "LISTENING <port>".
// Each request is answered 200 "hello <id>" for an allowed identity and
// 403 otherwise, with one log line on stdout naming the caller.

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsExchange;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

public class IdentityReceiver {
    // GeneralName type of a URI in a SAN (RFC 5280 §4.2.1.6).
    private static final int URI = 6;

    // The SPIFFE ID of the caller: the one URI SAN of its certificate,
    // or null when it has none or more than one (X509-SVID §2).
    static String callerID(X509Certificate cert) throws Exception {
        Collection<List<?>> sans = cert.getSubjectAlternativeNames();
        List<String> uris = new ArrayList<>();
        if (sans != null) {
            for (List<?> san : sans) {
                if ((Integer) san.get(0) == URI) {
                    uris.add((String) san.get(1));
                }
            }
        }
        if (uris.size() != 1 || !uris.get(0).startsWith("spiffe://")) {
            return null;
        }
        return uris.get(0);
    }

    static KeyStore load(String path, char[] password) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(path)) {
            ks.load(in, password);
        }
        return ks;
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        char[] password = args[3].toCharArray();
        Set<String> allowed = Set.of(java.util.Arrays.copyOfRange(args, 4, args.length));

        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(args[1], password), password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(args[2], password));
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);

        HttpsServer server = HttpsServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(ctx) {
            @Override
            public void configure(HttpsParameters params) {
                SSLParameters p = getSSLContext().getDefaultSSLParameters();
                p.setNeedClientAuth(true); // a certificate of the CA, verified by the JDK
                params.setSSLParameters(p);
            }
        });
        server.createContext("/", exchange -> {
            int status;
            String body;
            try {
                Certificate[] chain = ((HttpsExchange) exchange).getSSLSession().getPeerCertificates();
                String id = callerID((X509Certificate) chain[0]);
                if (id != null && allowed.contains(id)) {
                    status = 200;
                    body = "hello " + id + "\n";
                } else {
                    status = 403;
                    body = "forbidden: " + (id == null ? "no workload identity" : id) + "\n";
                }
                System.out.println((status == 200 ? "caller allowed " : "caller refused ") + (id == null ? "(no identity)" : id));
            } catch (Exception e) {
                status = 403;
                body = "forbidden: " + e + "\n";
            }
            byte[] out = body.getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(status, out.length);
            try (OutputStream os = exchange.getResponseBody()) {
                os.write(out);
            }
        });
        server.start();
        System.out.println("LISTENING " + server.getAddress().getPort());
        System.out.flush();
    }
}
