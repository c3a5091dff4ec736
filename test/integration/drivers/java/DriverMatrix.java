// pgjdbc (Debian's libpostgresql-jdbc-java) through Gatehouse, one case per line:
//   java -cp /usr/share/java/postgresql.jar DriverMatrix.java <port> <user> <password>
// prints "<case>\tOK\t<value>" or "<case>\tERR\t<SQLSTATE>\t<message>"; one case's failure
// never stops the next (each opens its own connection).
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class DriverMatrix {
  interface Case { String run() throws Exception; }

  static String port, user, password;

  static Connection connect(String... extra) throws SQLException {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("password", password);
    p.setProperty("connectTimeout", "10");
    p.setProperty("socketTimeout", "30");
    for (int i = 0; i + 1 < extra.length; i += 2) p.setProperty(extra[i], extra[i + 1]);
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

  static String query(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) { return rows(rs); }
  }

  static final String[] CACHE_SQL = {
    "SELECT count(*) FROM orders WHERE id <= ?",
    "SELECT count(*) FROM customers WHERE id <= ?",
    "SELECT count(*) FROM orders WHERE id <= ? AND status = 'paid'",
  };

  public static void main(String[] args) {
    port = args[0];
    user = args[1];
    password = args[2];
    boolean bob = user.startsWith("bob");

    run("connect", () -> {
      try (Connection c = connect()) {
        return query(c, "SELECT current_database(), current_user") + ";" + c.getMetaData().getDatabaseMajorVersion();
      }
    });
    run("governed", () -> {
      try (Connection c = connect()) {
        return query(c, "SELECT region, count(*) FROM orders GROUP BY 1 ORDER BY 1") + ";" + query(c, "SELECT id FROM orders ORDER BY id LIMIT 3");
      }
    });
    run("refused", () -> {
      try (Connection c = connect(); Statement st = c.createStatement()) {
        if (bob) st.executeQuery("SELECT * FROM employees");
        else st.executeUpdate("INSERT INTO employees VALUES (999, 'x', 'x@x', 1, '000-00-0000')");
        return "allowed";
      } catch (SQLException e) {
        return e.getSQLState();
      }
    });
    run("params", () -> {
      try (Connection c = connect(); PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM orders WHERE id <= ? AND status = ?")) {
        ps.setInt(1, 1000);
        ps.setString(2, "paid");
        try (ResultSet rs = ps.executeQuery()) { return rows(rs); }
      }
    });
    run("prepared_cache", () -> {
      // prepareThreshold=1: server-prepared (S_n) from the first use; a cache of 2 statements:
      // the third distinct statement evicts the oldest, which pgjdbc Closes.
      try (Connection c = connect("prepareThreshold", "1", "preparedStatementCacheQueries", "2")) {
        List<String> out = new ArrayList<>();
        for (int round = 0; round < 2; round++) {
          for (int limit : new int[] {100, 1000, 2000}) {
            for (String sql : CACHE_SQL) {
              try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setInt(1, limit);
                try (ResultSet rs = ps.executeQuery()) { out.add(rows(rs)); }
              }
            }
          }
        }
        return String.join(",", out);
      }
    });
    run("fetch_size", () -> {
      // autocommit off + fetchSize: a named portal read 100 rows per Execute.
      try (Connection c = connect()) {
        c.setAutoCommit(false);
        long count = 0, sum = 0, last = 0;
        List<String> first = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT id FROM orders WHERE id > ? ORDER BY id")) {
          ps.setFetchSize(100);
          ps.setInt(1, 0);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              long id = rs.getLong(1);
              if (first.size() < 3) first.add(Long.toString(id));
              count++;
              sum += id;
              last = id;
            }
          }
        }
        c.commit();
        return count + ";" + String.join(":", first) + ";" + last + ";" + sum;
      }
    });
    run("copy_out", () -> {
      try (Connection c = connect()) {
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        StringWriter w = new StringWriter();
        long n = cm.copyOut("COPY (SELECT id, region FROM orders ORDER BY id) TO STDOUT WITH (FORMAT csv)", w);
        String[] lines = w.toString().split("\n");
        return n + ";" + lines[0] + ";" + lines[1];
      }
    });
    run("metadata", () -> {
      try (Connection c = connect()) {
        DatabaseMetaData md = c.getMetaData();
        List<String> tables = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
          while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
        }
        List<String> cols = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, "public", "customers", "%")) {
          while (rs.next()) cols.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
        }
        return String.join(",", tables) + ";" + String.join(",", cols);
      }
    });
    run("read_only_always", () -> {
      // readOnly=true with readOnlyMode=always: pgjdbc makes every transaction read only
      // (SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, BEGIN READ ONLY).
      try (Connection c = connect("readOnly", "true", "readOnlyMode", "always")) {
        String auto = query(c, "SELECT count(*) FROM orders WHERE id <= 100");
        c.setAutoCommit(false);
        String tx = query(c, "SELECT count(*) FROM customers WHERE id <= 100") + ":" + query(c, "SHOW transaction_read_only");
        c.commit();
        return auto + ";" + tx;
      }
    });
    run("startup_options", () -> {
      try (Connection c = connect("options", "-c TimeZone=Europe/Paris")) {
        return query(c, "SHOW TimeZone");
      }
    });
  }
}
