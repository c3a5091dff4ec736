// pgjdbc through Gatehouse in front of a mysql connection (test/integration/mysql-governed.test.ts):
//   java -cp /usr/share/java/postgresql.jar MysqlGovernedJdbc.java <port> <user> <password> <query> <prepared> <refused>
// <query>: a statement (its rows printed); <prepared>: a statement with one ? bound to 1000
// (or "-"); <refused>: a statement that must fail (its SQLSTATE printed). Autocommit off for
// the query (pgjdbc sends BEGIN with it), so BEGIN and COMMIT pass too.
// Prints "<case>\tOK\t<value>" or "<case>\tERR\t<SQLSTATE>\t<message>".
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class MysqlGovernedJdbc {
  interface Case { String run() throws Exception; }

  static String port, user, password;

  static Connection connect() throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("password", password);
    p.setProperty("connectTimeout", "10");
    p.setProperty("socketTimeout", "30");
    return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/warehouse", p);
  }

  static void run(String name, Case c) {
    try {
      System.out.println(name + "\tOK\t" + c.run());
    } catch (SQLException e) {
      System.out.println(name + "\tERR\t" + e.getSQLState() + "\t" + String.valueOf(e.getMessage()).replace('\n', ' '));
    } catch (Exception e) {
      System.out.println(name + "\tERR\t-\t" + e.toString().replace('\n', ' '));
    }
    System.out.flush();
  }

  static String rows(ResultSet rs) throws SQLException {
    List<String> out = new ArrayList<>();
    int n = rs.getMetaData().getColumnCount();
    while (rs.next()) {
      StringBuilder b = new StringBuilder();
      for (int i = 1; i <= n; i++) b.append(i > 1 ? ":" : "").append(rs.getString(i));
      out.add(b.toString());
    }
    return String.join(",", out);
  }

  public static void main(String[] a) throws Exception {
    port = a[0];
    user = a[1];
    password = a[2];
    String query = a[3], prepared = a[4], refused = a[5];
    run("query", () -> {
      try (Connection c = connect()) {
        c.setAutoCommit(false);
        String r;
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(query)) { r = rows(rs); }
        c.commit();
        return r;
      }
    });
    if (!prepared.equals("-")) {
      run("prepared", () -> {
        try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(prepared)) {
          StringBuilder b = new StringBuilder();
          // Twice: pgjdbc switches to a named server-prepared statement at the fifth run by default; the same text twice must agree.
          for (int i = 0; i < 2; i++) {
            ps.setInt(1, 1000);
            try (ResultSet rs = ps.executeQuery()) { b.append(i > 0 ? ";" : "").append(rows(rs)); }
          }
          return b.toString();
        }
      });
    }
    run("refused", () -> {
      try (Connection c = connect(); Statement st = c.createStatement()) {
        st.execute(refused);
        return "not refused";
      }
    });
  }
}
