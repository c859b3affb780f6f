{#
    Incremental strategy `replace` (docs/incremental.md): the batch holds the
    new version of every key it touches. Every target row whose `unique_key`
    appears in the batch is deleted, then the batch is inserted, except rows
    flagged `_is_tombstone`: those only delete their key (a group that lost
    its last event, a reference whose earlier winner was displaced). The flag
    exists in incremental batches only, so the table never has it.
#}
{% macro get_incremental_replace_sql(arg_dict) %}

    {%- set target = arg_dict["target_relation"] -%}
    {%- set batch = arg_dict["temp_relation"] -%}
    {%- set unique_key = arg_dict["unique_key"] -%}
    {%- if unique_key is string -%}
        {%- set unique_key = [unique_key] -%}
    {%- endif -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'replace' needs a unique_key"
        ) }}
    {%- endif -%}
    {%- set key_csv = unique_key | join(', ') -%}
    {%- set columns_csv = get_quoted_csv(
        arg_dict["dest_columns"] | map(attribute="name")
    ) -%}
    {%- set batch_columns = adapter.get_columns_in_relation(batch)
        | map(attribute="name") | list -%}

    delete from {{ target }}
    where ({{ key_csv }}) in (
        select distinct {{ key_csv }}
        from {{ batch }}
    );

    insert into {{ target }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ batch }}
    {% if "_is_tombstone" in batch_columns %}
    where not _is_tombstone
    {% endif %}

{% endmacro %}
