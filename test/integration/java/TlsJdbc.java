// pgjdbc over TLS (issue 14): connects with the given URL parameters (sslmode=require,
// verify-full with sslrootcert...) and runs one governed query. Run by
// test/integration/tls/tls-clients.test.ts as
// `java -cp postgresql.jar TlsJdbc.java <port> <user> <password> <url parameters>`;
// prints key=value lines.
import java.sql.*;
import java.util.Properties;

public class TlsJdbc {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/warehouse?" + args[3];
    Properties p = new Properties();
    p.setProperty("user", args[1]);
    p.setProperty("password", args[2]);
    try (Connection c = DriverManager.getConnection(url, p);
         Statement s = c.createStatement();
         ResultSet r = s.executeQuery("SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1")) {
      StringBuilder regions = new StringBuilder();
      while (r.next()) regions.append(regions.length() > 0 ? "," : "").append(r.getString(1)).append(':').append(r.getLong(2));
      System.out.println("regions=" + regions);
      System.out.println("ok=true");
    } catch (SQLException e) {
      System.out.println("sqlstate=" + e.getSQLState());
      System.out.println("error=" + e.getMessage().replace('\n', ' '));
    }
  }
}
