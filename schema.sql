-- image-server schema (guide sections 3 and 8, CONTRACT sections 1 and 5).
-- Re-runnable: every statement is CREATE ... IF NOT EXISTS or an upsert of seed rows, so applying
-- it to a database that already holds data changes nothing and loses nothing.
-- Needs MariaDB >= 10.6 (SKIP LOCKED for the outbox relay).

CREATE TABLE IF NOT EXISTS reference_types (
    code            VARCHAR(32)  NOT NULL,
    name            VARCHAR(64)  NOT NULL,
    allows_multiple TINYINT(1)   NOT NULL,
    max_images      INT          NULL COMMENT 'NULL: unlimited',
    description     VARCHAR(255) NULL,
    PRIMARY KEY (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS extensions (
    code VARCHAR(16) NOT NULL,
    name VARCHAR(64) NOT NULL,
    PRIMARY KEY (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS images (
    image_id          VARCHAR(255) NOT NULL,
    status            ENUM('TEMP','READY','CONFIRMED','DELETED','FAILED') NOT NULL,
    reference_type_id VARCHAR(32)  NOT NULL,
    reference_id      VARCHAR(200) NULL,
    image_url         VARCHAR(500) NOT NULL,
    uploader_id       VARCHAR(255) NULL,
    is_deleted        TINYINT(1)   NOT NULL DEFAULT 0,
    created_at        DATETIME(6)  NULL,
    updated_at        DATETIME(6)  NULL,
    PRIMARY KEY (image_id),
    KEY idx_images_reference_id (reference_id),
    -- A reference is (type, id) (CONTRACT 2.5): confirms look it up and lock it by both.
    KEY idx_images_reference (reference_type_id, reference_id, status),
    KEY idx_images_status (status),
    KEY idx_images_status_created (status, created_at),
    KEY idx_images_uploader_id (uploader_id),
    CONSTRAINT fk_images_reference_type FOREIGN KEY (reference_type_id) REFERENCES reference_types (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS storage_objects (
    image_id            VARCHAR(255)  NOT NULL,
    storage_location    VARCHAR(1000) NOT NULL COMMENT 'key of the served file under the upload dir',
    origin_location     VARCHAR(1000) NULL COMMENT 'key of the uploaded original while it is kept',
    origin_size         BIGINT        NOT NULL,
    converted_size      BIGINT        NULL,
    origin_format_id    VARCHAR(16)   NOT NULL,
    converted_format_id VARCHAR(16)   NULL,
    width               INT           NULL,
    height              INT           NULL,
    PRIMARY KEY (image_id),
    CONSTRAINT fk_storage_image FOREIGN KEY (image_id) REFERENCES images (image_id) ON DELETE CASCADE,
    CONSTRAINT fk_storage_origin_format FOREIGN KEY (origin_format_id) REFERENCES extensions (code),
    CONSTRAINT fk_storage_converted_format FOREIGN KEY (converted_format_id) REFERENCES extensions (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS status_history (
    id         BIGINT        NOT NULL AUTO_INCREMENT,
    image_id   VARCHAR(255)  NOT NULL,
    old_status ENUM('TEMP','READY','CONFIRMED','DELETED','FAILED') NULL COMMENT 'NULL: the row was created',
    new_status ENUM('TEMP','READY','CONFIRMED','DELETED','FAILED') NOT NULL,
    updated_at DATETIME(6)   NOT NULL,
    updated_by VARCHAR(255)  NULL,
    reason     VARCHAR(1000) NULL,
    PRIMARY KEY (id),
    KEY idx_history_image_id (image_id),
    KEY idx_history_updated_at (updated_at),
    CONSTRAINT fk_history_image FOREIGN KEY (image_id) REFERENCES images (image_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS image_sequence (
    id                BIGINT       NOT NULL AUTO_INCREMENT,
    reference_type_id VARCHAR(32)  NOT NULL COMMENT 'product 123 and post 123 are different references',
    reference_id      VARCHAR(200) NOT NULL,
    image_id          VARCHAR(255) NOT NULL,
    seq_number        INT          NOT NULL,
    created_at        DATETIME(6)  NOT NULL,
    updated_at        DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY idx_reference_seq (reference_type_id, reference_id, seq_number),
    KEY idx_image_id (image_id),
    UNIQUE KEY uk_reference_image (reference_type_id, reference_id, image_id),
    UNIQUE KEY uk_reference_seq (reference_type_id, reference_id, seq_number),
    CONSTRAINT fk_sequence_image FOREIGN KEY (image_id) REFERENCES images (image_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per reference that was ever confirmed. A confirm upserts it first, which takes the
-- row lock that serialises concurrent confirms of one reference (CONTRACT 2.5), even when the
-- reference has no images yet.
CREATE TABLE IF NOT EXISTS reference_versions (
    reference_type_id VARCHAR(32)  NOT NULL,
    reference_id      VARCHAR(200) NOT NULL,
    version           BIGINT       NOT NULL,
    updated_at        DATETIME(6)  NOT NULL,
    PRIMARY KEY (reference_type_id, reference_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Variants (CONTRACT 4): the smaller widths of a READY image, `{uuid}_{width}w.webp` beside the
-- full-size file, written with the READY transition. image_url as given to clients (base URL included).
CREATE TABLE IF NOT EXISTS image_variants (
    image_id         VARCHAR(255)  NOT NULL,
    width            INT           NOT NULL,
    height           INT           NOT NULL,
    storage_location VARCHAR(1000) NOT NULL,
    image_url        VARCHAR(1000) NOT NULL,
    size             BIGINT        NOT NULL,
    PRIMARY KEY (image_id, width),
    CONSTRAINT fk_variant_image FOREIGN KEY (image_id) REFERENCES images (image_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Transactional outbox (CONTRACT 5): written in the same transaction as the change it announces,
-- published by the relay. id is the allocation order; a key's rows are written under that key's
-- lock, so per key it is also the commit order.
CREATE TABLE IF NOT EXISTS outbox (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    event_id     CHAR(36)     NOT NULL,
    topic        VARCHAR(249) NOT NULL,
    message_key  VARCHAR(255) NOT NULL,
    event_type   VARCHAR(64)  NOT NULL,
    payload      LONGTEXT     NOT NULL COMMENT 'the whole CONTRACT envelope' CHECK (JSON_VALID(payload)),
    created_at   DATETIME(6)  NOT NULL,
    status       ENUM('PENDING','PUBLISHED','FAILED') NOT NULL DEFAULT 'PENDING',
    published_at DATETIME(6)  NULL,
    attempts     INT          NOT NULL DEFAULT 0,
    last_error   VARCHAR(1000) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_outbox_event_id (event_id),
    KEY idx_outbox_status_id (status, id),
    KEY idx_outbox_published_at (status, published_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Consumer-side dedupe: a consumer records each eventId it applied in the same transaction.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     VARCHAR(64) NOT NULL,
    event_id     CHAR(36)    NOT NULL,
    processed_at DATETIME(6) NOT NULL,
    outcome      VARCHAR(32) NOT NULL,
    detail       VARCHAR(1000) NULL,
    PRIMARY KEY (consumer, event_id),
    KEY idx_processed_at (processed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Conversion attempts per image: counted (and committed) before each conversion starts, so a
-- message whose conversion keeps killing its worker is answered FAILED after
-- IMAGES_CONVERT_MAX_ATTEMPTS deliveries instead of being redelivered forever.
CREATE TABLE IF NOT EXISTS conversion_attempts (
    image_id        VARCHAR(255) NOT NULL,
    attempts        INT          NOT NULL,
    last_started_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (image_id),
    CONSTRAINT fk_attempts_image FOREIGN KEY (image_id) REFERENCES images (image_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Idempotency-Key (CONTRACT 2.1): the first answer to a keyed request, written in the same
-- transaction as its work (a plain INSERT, so a second request with the key cannot also commit:
-- its transaction fails on the primary key). Kept 24 h, then swept.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key_hash        CHAR(64)     NOT NULL COMMENT 'sha256 of scope, owner (uploaderId) and key',
    scope           VARCHAR(16)  NOT NULL,
    fingerprint     CHAR(64)     NOT NULL COMMENT 'sha256 of what the request asked',
    response_status SMALLINT     NOT NULL,
    response_body   MEDIUMTEXT   NOT NULL COMMENT 'the JSON body (UTF-8), empty for none',
    created_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (key_hash),
    KEY idx_idempotency_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Keyed requests in flight (autocommit rows, deleted when answered): a retry meanwhile is 409.
-- A claim older than its lease belongs to a request that died; the next retry takes it over.
CREATE TABLE IF NOT EXISTS idempotency_claims (
    key_hash    CHAR(64)    NOT NULL,
    fingerprint CHAR(64)    NOT NULL,
    claimed_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Quotas per uploader (CONTRACT 2.7, core/quotas.py). An upload takes its uploader's row here
-- first (an upsert: the row lock serialises that uploader's uploads in every replica), then reads
-- and adds to its minute buckets, all in the upload's own transaction: concurrent uploads can
-- never count past a limit. Buckets older than a day are swept.
CREATE TABLE IF NOT EXISTS upload_quota_locks (
    uploader_id VARCHAR(255) NOT NULL,
    charged_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (uploader_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS upload_usage (
    uploader_id  VARCHAR(255) NOT NULL,
    minute_start DATETIME     NOT NULL COMMENT 'UTC minute the uploads fell in',
    images       INT          NOT NULL,
    bytes        BIGINT       NOT NULL,
    PRIMARY KEY (uploader_id, minute_start),
    KEY idx_usage_minute (minute_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A referenceId is at most 200 characters everywhere (images.reference_id; CONTRACT 2.2). Databases
-- made before these tables said so are brought in line; on a column that already is VARCHAR(200)
-- MariaDB changes nothing (no copy), so re-running stays cheap.
ALTER TABLE image_sequence MODIFY reference_id VARCHAR(200) NOT NULL;
ALTER TABLE reference_versions MODIFY reference_id VARCHAR(200) NOT NULL;

-- Seed rows (CONTRACT 1). INSERT IGNORE keeps rows an operator has edited.
INSERT IGNORE INTO reference_types (code, name, allows_multiple, max_images, description) VALUES
    ('PRODUCT', '상품', 1, 10, 'Product images, ordered'),
    ('POST', '게시글', 1, 20, 'Post images, ordered'),
    ('BANNER', '배너', 1, NULL, 'Banner images, ordered, unlimited'),
    ('CATEGORY', '카테고리', 0, 1, 'One category image, replaced on confirm'),
    ('PROFILE', '프로필', 0, 1, 'One profile image, replaced on confirm'),
    ('USER_BACKGROUND', '사용자 배경', 0, 1, 'One background image, replaced on confirm');

INSERT IGNORE INTO extensions (code, name) VALUES
    ('JPG', 'JPEG Image'),
    ('JPEG', 'JPEG Image'),
    ('PNG', 'Portable Network Graphics'),
    ('GIF', 'Graphics Interchange Format'),
    ('WEBP', 'WebP Image'),
    ('AVIF', 'AV1 Image File Format'),
    ('BMP', 'Bitmap Image'),
    ('SVG', 'Scalable Vector Graphics'),
    ('MP4', 'MPEG-4 Video'),
    ('MOV', 'QuickTime Movie'),
    ('HEIC', 'High Efficiency Image File Format'),
    ('HEIF', 'High Efficiency Image File Format');
